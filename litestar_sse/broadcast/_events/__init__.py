"""What a broadcast event is: its id, its bytes on the wire, and its values for code."""
