from talkplatform_agents.cli.main import main

main()
