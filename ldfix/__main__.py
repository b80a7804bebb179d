from ldfix.cli.app import main

main()
