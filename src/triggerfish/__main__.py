from triggerfish.cli import main

main()
