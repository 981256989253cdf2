"""The wiring layer: the dependencies that hand the lifespans' clients to the routes."""
