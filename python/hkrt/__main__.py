from hkrt.cli import main

main()
