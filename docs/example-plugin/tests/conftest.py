pytest_plugins = ["reidcore.testing"]
