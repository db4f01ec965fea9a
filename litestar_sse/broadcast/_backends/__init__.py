"""Where a broadcast's history lives: the contract every backend meets (:mod:`.base`,
:mod:`.replay`), and its two implementations, in memory and on Redis Streams."""
