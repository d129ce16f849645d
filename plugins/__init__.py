"""vigil's built-in plugins, each written exactly as a third-party plugin would be."""
