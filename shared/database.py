"""What the database being away looks like: the errors that mean "try again later", never "this is wrong".

One list for every part that must tell the two apart: the HTTP app answers them with 503 and Retry-After, the
consumer retries the message for as long as they last (never dead-letters it for them).
"""

from __future__ import annotations

import asyncpg

# what asyncpg raises while the database is unreachable: a refused, broken or timed-out connection (OSError
# covers ConnectionRefusedError and TimeoutError, a pool's acquire timeout too), a closed connection or pool,
# a server starting, shutting down or out of connections
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InternalClientError,  # the pool resetting a connection the server's death broke mid-operation
    OSError,
)

# a transaction PostgreSQL broke off to settle a conflict with another (class 40: a deadlock, a serialization
# failure; a lock not granted in time): it committed nothing, and the same work run again succeeds
TRANSACTION_CONFLICT: tuple[type[Exception], ...] = (asyncpg.TransactionRollbackError, asyncpg.LockNotAvailableError)
