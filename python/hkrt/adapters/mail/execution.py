"""MailOrderBroker: a notifier that mails every order it is given (docs/broker-mail.md).

It holds no account: an order is ``Sent`` once the SMTP server has answered 250 to DATA (what
happens to QUIT after that changes nothing), and the order id is the message's Message-ID.  It reports no
lifecycle (no ``attach``, no ExecutionReport): a person executes the order, which stays ``submitted``.  The
password is kept out of ``repr``, logs and error texts, also when a server's reply echoes it plainly,
base64-encoded (as AUTH PLAIN/LOGIN send it) or URL-encoded: see ``redact_secrets``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import ipaddress
import logging
import smtplib
import ssl
from collections.abc import Iterable, Mapping
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any, Literal

from hkrt._hkrt import OrderBrokerBase, OrderRequest, OrderResult, OrderStatus
from hkrt.adapters.mail.config import MailConfig
from hkrt.adapters.mail.mapping import order_lines, order_subject
from hkrt.adapters.redaction import redact_secrets

__all__ = ["MailOrderBroker", "Security", "make_execution_client", "redact_secrets"]

log = logging.getLogger("hkrt.broker.mail")

Security = Literal["ssl", "starttls", "none"]
_DEFAULT_PORTS: dict[str, int] = {"ssl": 465, "starttls": 587, "none": 25}
_CONFIG_KEYS = (
    "host", "port", "user", "password", "sender", "to", "security", "timeout",
    "name", "subject_prefix", "allow_insecure",
)  # fmt: skip
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
# After the message is delivered, QUIT is only a courtesy: never wait the full timeout for it.
_QUIT_TIMEOUT = 2.0


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _addresses(to: str | Iterable[str]) -> list[Address]:
    """'a@x.com, Bob <b@y.com>' or a list of such -> Address objects; ValueError for anything unusable."""
    items = [to] if isinstance(to, str) else list(to)
    parsed = email.utils.getaddresses([str(i) for i in items])
    out = []
    for display, addr in parsed:
        if not addr:
            continue
        local, at, domain = addr.rpartition("@")
        if not at or not local or not domain or any(c.isspace() for c in addr):
            raise ValueError(f"not an e-mail address: {addr!r}")
        out.append(Address(display_name=display, username=local, domain=domain))
    if not out:
        raise ValueError("no recipient: `to` needs at least one e-mail address")
    return out


class _Unset:
    """The default of ``user``/``password``: tells "not given" from None (no AUTH)."""

    def __repr__(self) -> str:
        return "<unset>"


_UNSET = _Unset()
_HIKYUU_FORM = "MailOrderBroker(host, sender, pwd, receivers)"
_HKRT_FORM = "MailOrderBroker(host, port=None, *, user, password, sender=None, to)"


def _is_port(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit())


def _call_form(
    args: tuple[Any, ...],
    port: Any,
    user: Any,
    password: Any,
    sender: Any,
    to: Any,
    pwd: Any,
    receivers: Any,
) -> tuple[str | None, str | None, str | None, Any, Any]:
    """(user, password, sender, to, port) from either call form; TypeError for a call that is neither.
    Error texts name arguments, never their values (one of them may be the password)."""
    hikyuu_keywords = [k for k, v in (("pwd", pwd), ("receivers", receivers)) if v is not None]
    if len(args) == 3 or (not args and hikyuu_keywords):  # hikyuu's form
        if args and hikyuu_keywords:
            raise TypeError(f"{', '.join(hikyuu_keywords)} given both by position and by keyword; use {_HIKYUU_FORM}")
        if args:
            if sender is not None:
                raise TypeError(f"sender given both by position and by keyword; use {_HIKYUU_FORM}")
            sender, pwd, receivers = args
        if _is_port(sender):
            raise TypeError(f"a port ({sender}) where hikyuu's form has the sender address; use {_HKRT_FORM}")
        mixed = [k for k, v in (("user", user), ("password", password), ("to", to)) if not isinstance(v, _Unset | None)]
        if mixed:
            raise TypeError(
                f"{_HIKYUU_FORM} mixed with {', '.join(k + '=' for k in mixed)} of hkrt's form: use one form"
            )
        missing = [k for k, v in (("sender", sender), ("pwd", pwd), ("receivers", receivers)) if not v]
        if missing:
            raise ValueError(f"{_HIKYUU_FORM}: {', '.join(missing)} missing or empty")
        if not isinstance(sender, str) or not isinstance(pwd, str):
            raise TypeError(f"{_HIKYUU_FORM}: sender and pwd must be strings")
        return sender, pwd, sender, receivers, port
    if len(args) > 1:
        raise TypeError(
            f"MailOrderBroker takes hikyuu's 4 positional arguments {_HIKYUU_FORM} or hkrt's host and port "
            f"then keywords {_HKRT_FORM}; got {len(args) + 1} positional arguments"
        )
    if args:
        if port is not None:
            raise TypeError("port given both by position and by keyword")
        if not _is_port(args[0]):
            raise TypeError(
                f"the 2nd argument is not a port; hikyuu's form takes 4 positional arguments: {_HIKYUU_FORM}"
            )
        port = args[0]
    if isinstance(user, _Unset) or isinstance(password, _Unset):
        raise TypeError(
            f"{_HKRT_FORM}: user= and password= are required (both None for a server without AUTH); "
            f"or use hikyuu's {_HIKYUU_FORM}"
        )
    if to is None:
        raise TypeError(f"{_HKRT_FORM}: to= (the recipients) is required")
    return user, password, sender, to, port


class MailOrderBroker(OrderBrokerBase):
    """Mails each buy/sell as one text/plain UTF-8 message; a notifier, not an account.

    Two call forms:

    - hkrt's: ``MailOrderBroker(host, port=None, *, user, password, sender=None, to, ...)``;
    - hikyuu's: ``MailOrderBroker(host, sender, pwd, receivers)`` (positional, or by those keyword
      names): ``sender`` is both the login and the ``From`` address, ``receivers`` a list or a
      comma-separated string.  Only the arguments map; the transport is hkrt's: implicit TLS on
      port 465 by default, where hikyuu logged in over plain SMTP on port 25 and sent the password
      in clear text (``port=25, security="none", allow_insecure=True`` does that still).

    ``security``: ``"ssl"`` (implicit TLS, port 465 by default), ``"starttls"`` (port 587) or
    ``"none"`` (port 25; only to a loopback host unless ``allow_insecure=True``, since the
    password would cross the network in clear text).  ``user=None`` skips AUTH (a local relay).
    ``ssl_context`` replaces the default one (which verifies the server's certificate and name).
    Mixing the two forms (hikyuu's positional arguments with ``user=``, say) is a ``TypeError``.
    """

    def __init__(
        self,
        host: str,
        *args: Any,
        port: int | str | None = None,
        user: str | _Unset | None = _UNSET,
        password: str | _Unset | None = _UNSET,
        sender: str | None = None,
        to: str | Iterable[str] | None = None,
        pwd: str | None = None,
        receivers: str | Iterable[str] | None = None,
        security: Security = "ssl",
        timeout: float = 10.0,
        name: str = "MailOrderBroker",
        subject_prefix: str = "[hkrt]",
        ssl_context: ssl.SSLContext | None = None,
        allow_insecure: bool = False,
    ) -> None:
        super().__init__(name)
        user, password, sender, to, port = _call_form(args, port, user, password, sender, to, pwd, receivers)
        if not host or not isinstance(host, str):
            raise ValueError("host: the SMTP server's name is required")
        if security not in _DEFAULT_PORTS:
            raise ValueError(f"security must be 'ssl', 'starttls' or 'none', not {security!r}")
        if security == "none" and not allow_insecure and not _is_loopback(host):
            raise ValueError(
                f"security='none' to {host} would send the order (and the password) in clear text; "
                "use 'ssl' or 'starttls', or pass allow_insecure=True to accept that"
            )
        if timeout <= 0:
            raise ValueError("timeout must be > 0 seconds")
        if bool(user) != bool(password):
            raise ValueError("user and password go together (both None for a server without AUTH)")
        self._host = host
        self._port = int(port) if port else _DEFAULT_PORTS[security]
        self._user = user or None
        self._password = password or None
        self._to = _addresses(to)
        from_text = sender or user
        if not from_text:
            raise ValueError("sender: needed when there is no user to send as")
        self._sender = _addresses(from_text)[0]
        self._security: Security = security
        self._timeout = float(timeout)
        self._subject_prefix = subject_prefix
        self._ssl_context = ssl_context
        self._sent = 0

    # ------------------------------------------------------------------ construction from settings
    @classmethod
    def from_config(cls, config: Mapping[str, Any], **overrides: Any) -> MailOrderBroker:
        """From a mapping with keys host, port, user, password, sender, to, security, timeout, name,
        subject_prefix, allow_insecure (strings are accepted, as from a file or the environment)."""
        settings = {k: v for k, v in dict(config).items() if v is not None}
        settings.update(overrides)
        unknown = sorted(set(settings) - set(_CONFIG_KEYS) - {"ssl_context"})
        if unknown:
            raise TypeError(f"unknown mail setting(s) {', '.join(unknown)}; valid: {', '.join(_CONFIG_KEYS)}")
        if not settings.get("host"):
            raise ValueError("mail setting 'host' is required")
        if "to" not in settings:
            raise ValueError("mail setting 'to' is required")
        for key, kind in (("port", int), ("timeout", float)):
            if settings.get(key) not in ("", None):
                settings[key] = _number(key, settings[key], kind)
        if isinstance(settings.get("security"), str):
            settings["security"] = settings["security"].strip().lower()
        insecure = settings.get("allow_insecure")
        if isinstance(insecure, str):
            if insecure.strip().lower() not in _TRUE | _FALSE:
                raise ValueError(f"allow_insecure must be true or false, not {insecure!r}")
            settings["allow_insecure"] = insecure.strip().lower() in _TRUE
        settings.setdefault("user", None)
        settings.setdefault("password", None)
        return cls(**settings)

    @classmethod
    def from_env(
        cls, prefix: str = "HKRT_MAIL_", environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> MailOrderBroker:
        """From HKRT_MAIL_HOST, _PORT, _USER, _PASSWORD, _SENDER, _TO (comma-separated), _SECURITY,
        _TIMEOUT, _SUBJECT_PREFIX, _ALLOW_INSECURE; keyword overrides win."""
        from hkrt.core.settings_env import prefixed, set_by

        config = {k: v for k, v in prefixed(prefix, environ).items() if k in _CONFIG_KEYS}
        try:
            return cls.from_config(config, **overrides)
        except ValueError as exc:
            text = str(exc)
            raise ValueError(f"{text}{set_by(text, config) or f' (environment variables {prefix}*)'}") from None

    # ------------------------------------------------------------------ inspection
    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def security(self) -> Security:
        return self._security

    @property
    def recipients(self) -> list[str]:
        return [a.addr_spec for a in self._to]

    @property
    def sender(self) -> str:
        return str(self._sender)

    @property
    def sent_count(self) -> int:
        """Messages the server accepted."""
        return self._sent

    def __repr__(self) -> str:  # never the password
        return (
            f"MailOrderBroker(name={self.name!r}, host={self._host!r}, port={self._port}, "
            f"security={self._security!r}, user={self._user!r}, to={self.recipients!r})"
        )

    __str__ = __repr__

    # ------------------------------------------------------------------ the message
    def build_message(
        self, side: str, datetime: dt.datetime, market: str, code: str, price: float, num: float,
        stoploss: float = 0.0, goal_price: float = 0.0, part_from: int = 0, remark: str = "",
    ) -> EmailMessage:  # fmt: skip
        """The message an order is mailed as (``side`` 'BUY' or 'SELL')."""
        request = OrderRequest(datetime, market.upper(), code, price, num, stoploss, goal_price, part_from, remark)
        return self.message_for(side, request)

    def message_for(self, side: str, request: OrderRequest) -> EmailMessage:
        """The message ``request`` is mailed as (``side`` 'BUY' or 'SELL'): its fields as
        :func:`hkrt.adapters.mail.mapping.order_lines` writes them."""
        prefix = f"{self._subject_prefix} " if self._subject_prefix else ""
        msg = EmailMessage()
        msg["Subject"] = f"{prefix}{order_subject(side, request)}"
        msg["From"] = self._sender
        msg["To"] = self._to  # a proper address list: "a@x.com, b@y.com"
        msg["Date"] = email.utils.formatdate(localtime=True)
        msg["Message-ID"] = email.utils.make_msgid("hkrt", domain=self._sender.domain)
        body = "\n".join(f"{k}: {v}" for k, v in order_lines(side, request, self.name)) + "\n"
        # quoted-printable keeps the text readable and 7-bit safe for servers without 8BITMIME
        msg.set_content(body, charset="utf-8", cte="quoted-printable")
        return msg

    def deliver(self, subject: str, body: str) -> OrderResult:
        """Mail a message of the caller's (hkrt.notify's mail alerts): ``subject`` after the subject prefix,
        ``body`` as UTF-8 text, to this broker's recipients over its SMTP session.  ``Sent`` with the
        Message-ID, or ``Failed`` with the one-line reason (the password hidden); never raises."""
        prefix = f"{self._subject_prefix} " if self._subject_prefix else ""
        msg = EmailMessage()
        msg["Subject"] = f"{prefix}{subject}"
        msg["From"] = self._sender
        msg["To"] = self._to
        msg["Date"] = email.utils.formatdate(localtime=True)
        msg["Message-ID"] = email.utils.make_msgid("hkrt", domain=self._sender.domain)
        msg.set_content(body if body.endswith("\n") else body + "\n", charset="utf-8", cte="quoted-printable")
        return self._send(msg)

    def _redact(self, text: str) -> str:
        return redact_secrets(text, [self._password])

    def _send(self, msg: EmailMessage) -> OrderResult:
        where = f"{self._host}:{self._port}"
        smtp: smtplib.SMTP | None = None
        # What the session was doing when it failed: a failure before the server's 250 to DATA is Failed,
        # and one while waiting for that answer means the message may have arrived all the same.
        phase = {"step": "connect"}
        try:
            context = self._ssl_context or ssl.create_default_context()
            if self._security == "ssl":
                smtp = smtplib.SMTP_SSL(self._host, self._port, timeout=self._timeout, context=context)
            else:
                smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
            if self._security == "starttls":
                phase["step"] = "STARTTLS"
                smtp.starttls(context=context)  # raises SMTPNotSupportedError if not offered: no fallback
            if self._user:
                assert self._password is not None
                phase["step"] = "login"
                smtp.login(self._user, self._password)
            phase["step"] = "MAIL/RCPT"
            smtp.data = _marking_data(smtp.data, phase)  # type: ignore[method-assign]
            # Returns only after the server's 250 to DATA (anything else raises): the message is delivered.
            refused = smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            why = f"mail to {where} failed: login as {self._user!r} refused ({exc.smtp_code} {_text(exc.smtp_error)})"
            return self._failed(why)
        except smtplib.SMTPResponseException as exc:
            why = f"mail to {where} failed: {type(exc).__name__} {exc.smtp_code} {_text(exc.smtp_error)}"
            return self._failed(why)
        except (smtplib.SMTPException, OSError) as exc:  # refused, timeout, TLS, DNS, connection lost, ...
            why = f"mail to {where} failed during {phase['step']}: {type(exc).__name__}: {exc}"
            if phase["step"] == "DATA":
                why += "; the server may have taken the message: check the mailbox before resending"
            return self._failed(why)
        except Exception as exc:  # e.g. a password smtplib cannot encode: still a result, never a raise
            return self._failed(f"mail to {where} failed during {phase['step']}: {type(exc).__name__}: {exc}")
        finally:
            if smtp is not None:
                self._goodbye(smtp, delivered=phase["step"] == "delivered")
        self._sent += 1
        if refused:  # taken for some recipients: the order is notified, but say who missed it
            log.warning("mail recipients refused", extra={"refused": sorted(refused), "broker": self.name})
        return OrderResult(OrderStatus.Sent, order_id=msg["Message-ID"])

    def _goodbye(self, smtp: smtplib.SMTP, *, delivered: bool) -> None:
        """QUIT and close; never raises.  After delivery a failed QUIT (an error reply, a dropped or hung
        connection) is noted at INFO and changes nothing: the order is Sent and must not be resent."""
        where = f"{self._host}:{self._port}"
        try:
            if smtp.sock is not None:
                smtp.sock.settimeout(min(self._timeout, _QUIT_TIMEOUT))
                code, reply = smtp.docmd("QUIT")
                if code != 221 and delivered:
                    log.info(
                        "mail delivered; the server then answered QUIT with an error (ignored)",
                        extra={"broker": self.name, "server": where, "code": code, "reply": self._redact(_text(reply))},
                    )
        except (smtplib.SMTPException, OSError) as exc:
            if delivered:
                log.info(
                    "mail delivered; QUIT then failed (ignored)",
                    extra={"broker": self.name, "server": where, "error": self._redact(f"{type(exc).__name__}: {exc}")},
                )
        finally:
            with contextlib.suppress(OSError):
                smtp.close()

    def _failed(self, why: str) -> OrderResult:
        why = self._redact(why)
        log.warning("%s", why, extra={"broker": self.name})
        return OrderResult(OrderStatus.Failed, error=why)

    # ------------------------------------------------------------------ hooks
    def _buy(self, request: OrderRequest) -> OrderResult:
        return self._send(self.message_for("BUY", request))

    def _sell(self, request: OrderRequest) -> OrderResult:
        return self._send(self.message_for("SELL", request))

    def _get_asset_info(self) -> str:
        # Raising is how a hook sets last_error; get_asset_info() then returns "".
        raise NotImplementedError(f"{self.name} is a mail notifier: it holds no account, so it has no asset info")


def _text(error: bytes | str) -> str:
    return error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)


def _marking_data(data, phase: dict[str, str]):  # type: ignore[no-untyped-def]
    """``smtp.data`` that records when DATA starts and when the server has answered it (250)."""

    def marked(msg: bytes | str) -> tuple[int, bytes]:
        phase["step"] = "DATA"
        answer: tuple[int, bytes] = data(msg)  # raises SMTPDataError for an answer other than 354 to DATA itself
        if answer[0] == 250:  # anything else: sendmail raises SMTPDataError, the order is Failed
            phase["step"] = "delivered"
        return answer

    return marked


def make_execution_client(config: MailConfig) -> MailOrderBroker:
    """The mail notifier (``hkrt run --broker mail``) from its typed settings."""
    return MailOrderBroker.from_config(config.settings())


def _number(key: str, value: Any, kind: type[int] | type[float]) -> int | float:
    """A numeric setting given as text (a file's, the environment's): ValueError naming it (its variable when the
    environment gave it)."""
    try:
        return kind(value)
    except (TypeError, ValueError):
        from hkrt.core.settings_env import setting_name

        what = "an integer" if kind is int else "a number"
        raise ValueError(f"{setting_name(key, value)} must be {what}, not {value!r}") from None
