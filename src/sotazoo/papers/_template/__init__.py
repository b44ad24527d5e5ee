"""The template of a paper folder: copy it to `papers/<id>/`, then follow the steps in
`card.toml` and `model.py`. The contract it keeps is `sotazoo.papers._contract`."""
