"""A MetaApi simulator on loopback: provisioning + client REST and the Socket.IO 2 / Engine.IO 3 stream at ``/ws``,
over a seeded MetaTrader market (``model``), with fault switches (``server``), run in a thread (``runner``)."""
