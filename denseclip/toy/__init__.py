"""The toy problem: tiny OpenAI-format CLIPs, toy datasets and captions, for tests and demos.

Nothing here is imported by ``import denseclip``; it registers no module.
"""
