"""Pull: per object type, cursor, pages and state (page and cursor in one transaction); associations."""
