"""The local fan-out, without I/O: topics' rings, subscribers' cursors, their limits and
backlogs. One encoded copy of each event is shared by every subscriber."""
