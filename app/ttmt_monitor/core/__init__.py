"""Source-neutral state and pure logic: domain objects, applying events, P&L, statistics. Never imports Qt."""
