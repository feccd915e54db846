from rnnx.cli import main

main()
