"""What kalixo keeps on disk or in a database: settings, credentials, the journal."""
