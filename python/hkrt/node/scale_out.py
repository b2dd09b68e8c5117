"""The node's scale-out keys (docs/scale-out.md): ``redis`` and ``group`` (the spot server appends the feed to a
Redis stream, the agent reads it through its consumer group) and a ``postgresql://`` ``store`` (the agent's
PostgreSQL recorder).

A password in either URL never reaches a child's command line (which ``ps`` shows to every user, and the
child's log repeats): a PostgreSQL password goes to the agent as ``PGPASSWORD`` in its environment (libpq
reads it there); a Redis URL has no such variable, so the child's log shows it masked
(:func:`hkrt.node.child_log.shown_command`) and docs/operations.md says to prefer a unix socket or an ACL user
on loopback.
"""

from __future__ import annotations

import logging
import urllib.parse

from hkrt.node.config import NodeConfig

log = logging.getLogger("hkrt.node")

PASSWORD_ENV = "PGPASSWORD"  # libpq's variable: psycopg's connection takes the password from it


def without_password(url: str) -> tuple[str, str | None]:
    """``url`` without its password (userinfo or ``password=`` query parameter), and that password; a URL
    without one comes back as it is."""
    parts = urllib.parse.urlsplit(url)
    password = urllib.parse.unquote(parts.password) if parts.password else None
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}@{host}" if user else host
    query = []
    for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() == "password":
            password = value
        else:
            query.append((key, value))
    if password is None:
        return url, None
    rest = urllib.parse.urlencode(query)
    # built by hand: urlunsplit drops the "//" of unix:///path, whose host part is empty
    built = f"{parts.scheme}://{netloc}{parts.path}" + (f"?{rest}" if rest else "")
    return built + (f"#{parts.fragment}" if parts.fragment else ""), password


def agent_store(config: NodeConfig) -> tuple[str, dict[str, str]]:
    """The agent's ``--store`` value and the environment it needs (a database password)."""
    url = config.store_url
    if url is None:
        return str(config.store_dir), {}
    bare, password = without_password(url)
    return bare, ({PASSWORD_ENV: password} if password is not None else {})


def redis_route(config: NodeConfig) -> tuple[str | None, dict[str, str]]:
    """The ``--redis`` URL a child gets, without its password, and the environment that carries the password
    (``HKRT_REDIS_PASSWORD``: never on a command line, where the process list shows it to every user)."""
    if config.redis is None:
        return None, {}
    from hkrt.feed.redis_url import PASSWORD_ENV

    bare, password = without_password(config.redis)
    return bare, ({PASSWORD_ENV: password} if password is not None else {})


def agent_feed_args(config: NodeConfig, address: str) -> list[str]:
    """How the agent reads the feed: nng at ``address``, or the Redis stream through its consumer group with
    the spot server's retransmission socket at ``address`` filling any gap (the password: :func:`redis_route`)."""
    url, _env = redis_route(config)
    if url is None:
        return ["--address", address]
    return ["--redis", url, "--group", config.agent_group, "--retransmit-from", address]


def describe(config: NodeConfig) -> str:
    """The feed's and the store's routes as a line may show them (passwords masked), or ""."""
    from hkrt.pgstore.url import redact_url

    parts = []
    if config.redis is not None:
        from hkrt.feed.redis_url import parse_redis_url

        parts.append(f"feed through Redis {parse_redis_url(config.redis).display} (group {config.agent_group})")
    if config.store_url is not None:
        parts.append(f"bars to {redact_url(config.store_url)}")
    return "; ".join(parts)


def prepare_group(config: NodeConfig) -> bool:
    """Create the agent's consumer group (and the stream) before the spot server's first message, so the
    agent reads the day from its start however late it joins; a group that exists keeps its place (an
    agent resumes from what it last acknowledged).  False, with a WARNING, when Redis cannot be reached
    now (the agent creates the group when it can; a gap at the start is then filled by retransmission)."""
    if config.redis is None:
        return True
    from hkrt.feed.redis_reader import RedisGroupReader

    reader = RedisGroupReader(config.redis, config.agent_group, start_id="$")
    try:
        joined = reader.join()
    finally:
        reader.close()
    if not joined:
        log.warning("Redis not reachable: the agent will create its consumer group %s when it is",
                    config.agent_group, extra={"group": config.agent_group})  # fmt: skip
    return joined
