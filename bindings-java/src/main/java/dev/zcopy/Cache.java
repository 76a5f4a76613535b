package dev.zcopy;

/**
 * What a transfer does to the page cache of a regular-file source. A file larger than memory,
 * streamed once, otherwise evicts everything else the server keeps cached.
 */
public enum Cache {
    /** The kernel's default: the pages read stay cached. */
    KEEP(0),
    /**
     * Release the source's pages behind the transfer ({@code POSIX_FADV_DONTNEED} on ranges
     * already delivered).
     */
    DROP_BEHIND(1),
    /**
     * Read the source with {@code O_DIRECT} into aligned buffers (plus drop-behind), as nginx's
     * {@code directio}. To a socket, an 8 MiB range already wholly in the page cache is sent from
     * there with sendfile instead of being read again from the disk, so a hot file costs what
     * {@link #DROP_BEHIND} costs and a cold one never enters the cache. Only {@link Method#AUTO}
     * and {@link Method#READ_WRITE} read that way;
     * where the file system refuses {@code O_DIRECT} the transfer reads through the page cache
     * with drop-behind, and {@link TransferReport#fallbacks()} counts that.
     */
    DIRECT(2);

    private final int number;

    Cache(int number) {
        this.number = number;
    }

    /** The number the native bridge takes. */
    int number() {
        return number;
    }
}
