"""The deployment-blocking suite: real runtime, real WebSockets."""
