"""HTTP plumbing shared by the API, the console and the portal."""
