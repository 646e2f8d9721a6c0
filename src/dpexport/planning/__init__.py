"""Planning: from config, logical time and state to what one export reads and writes."""
