from smctrace.cli import main

main()
