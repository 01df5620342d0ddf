"""The ``course`` commands, one module each: ``register`` adds its arguments, beside the handler that runs it."""
