"""`affect serve`: face + voice affect over a WebSocket for web pages, Unity and other non-Python apps.

Imported only by the `serve` command (it needs the `serve` extra: starlette, uvicorn, websockets); the protocol
is docs/protocol.md, the browser client is static/index.html.
"""
