"""Operations: metrics, deployment checks (``patron doctor``), backups and restore drills."""
