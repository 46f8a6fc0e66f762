"""The account's own images (snapshots, backups, uploads): their `image.*` calls."""
