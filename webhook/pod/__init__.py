"""What every layer reads about a pod: field paths, tolerant readers, container kinds, merge
keys and JSON equality. The bottom layer: it imports nothing else of the webhook."""
