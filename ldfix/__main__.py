from ldfix.cli.main import main

main()
