"""DBPN: Deep Back-Projection Networks for Super-Resolution."""
