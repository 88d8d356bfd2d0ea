"""Agentia's web console: a Streamlit page over the gateway's public HTTP API.

``client`` talks to the gateway (httpx, no Streamlit); ``shaping`` turns its answers into
what the page shows (no Streamlit either); ``page`` is the Streamlit script that
``agentia console`` runs.
"""
