"""The HTTP edge, written once: the HTTP/1.1 client (connections, pools, TLS, proxies), SSE
framing, ASGI types and the OpenAI error shape. The gateway, the emulator and bench use it.
Imports only moerun.errors.
"""
