package dev.zcopy;

import java.time.Duration;
import java.util.Objects;

/**
 * How {@link ZeroCopy#transfer(java.io.FileDescriptor, java.io.FileDescriptor, TransferOptions)}
 * moves bytes: the method, where to read, how much, how long to wait, and whether an explicit
 * method may fall back. Immutable; build one with {@link #builder()}.
 */
public final class TransferOptions {
    private static final TransferOptions DEFAULTS = new Builder().build();

    private final Method method;
    private final long offset;
    private final long count;
    private final Duration timeout;
    private final boolean fallback;
    private final Cache cache;

    private TransferOptions(Builder b) {
        this.method = b.method;
        this.offset = b.offset;
        this.count = b.count;
        this.timeout = b.timeout;
        this.fallback = b.fallback;
        this.cache = b.cache;
    }

    /**
     * The defaults: {@link Method#AUTO}, from the source's file position (which advances),
     * until the source's end, waiting as long as it takes, no fallback for explicit methods.
     *
     * @return the default options
     */
    public static TransferOptions defaults() {
        return DEFAULTS;
    }

    /**
     * A builder starting from the defaults.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * The method to use.
     *
     * @return the method, {@link Method#AUTO} by default
     */
    public Method method() {
        return method;
    }

    /**
     * Where to read the source from, or -1 to use (and advance) the source's file position.
     *
     * @return the offset, or -1 when absent
     */
    public long offset() {
        return offset;
    }

    /**
     * At most how many bytes to move, or -1 for "until the source's end of file".
     *
     * @return the count, or -1 when absent
     */
    public long count() {
        return count;
    }

    /**
     * The deadline of the whole call, or null to wait as long as it takes.
     *
     * @return the timeout, or null
     */
    public Duration timeout() {
        return timeout;
    }

    /**
     * Whether an explicit method may fall back to the next one in the engine's chain.
     *
     * @return true when fallback is allowed
     */
    public boolean fallback() {
        return fallback;
    }

    /**
     * What the transfer does to the source's page cache.
     *
     * @return the policy ({@link Cache#KEEP} by default)
     */
    public Cache cache() {
        return cache;
    }

    @Override
    public String toString() {
        return "TransferOptions[method=" + method + ", offset=" + offset + ", count=" + count
                + ", timeout=" + timeout + ", fallback=" + fallback + ", cache=" + cache + "]";
    }

    /** Builds {@link TransferOptions}; every setter returns the builder. Not thread-safe. */
    public static final class Builder {
        private Method method = Method.AUTO;
        private long offset = -1;
        private long count = -1;
        private Duration timeout;
        private boolean fallback;
        private Cache cache = Cache.KEEP;

        private Builder() {
        }

        /**
         * Use this method. {@link Method#AUTO} picks the best one and falls back at run time;
         * an explicit method that cannot work throws {@link ZcopyUnsupportedException} unless
         * {@link #fallback(boolean)} allows falling back.
         *
         * @param method the method
         * @return this builder
         * @throws NullPointerException if method is null
         */
        public Builder method(Method method) {
            this.method = Objects.requireNonNull(method, "method");
            return this;
        }

        /**
         * Read the source from this offset; the source's file position is left unchanged.
         * Without it the transfer reads from the source's position and advances it.
         *
         * @param offset a byte offset, at least 0
         * @return this builder
         * @throws IllegalArgumentException if offset is negative
         */
        public Builder offset(long offset) {
            if (offset < 0) {
                throw new IllegalArgumentException("negative offset " + offset);
            }
            this.offset = offset;
            return this;
        }

        /**
         * Move at most this many bytes (end of file first is not an error). Without it the
         * transfer runs to the source's end of file, which {@code /dev/zero} never reaches.
         * A count of 0 returns at once.
         *
         * @param count a byte count, at least 0
         * @return this builder
         * @throws IllegalArgumentException if count is negative
         */
        public Builder count(long count) {
            if (count < 0) {
                throw new IllegalArgumentException("negative count " + count);
            }
            this.count = count;
            return this;
        }

        /**
         * One deadline for the whole call, covering every wait on either descriptor. Zero
         * returns at the first wait with the bytes moved so far
         * ({@link TransferReport#wouldBlock()}); a positive duration throws
         * {@link ZcopyTimeoutException} when it passes. Null (the default) waits as long as
         * it takes, with poll, never spinning.
         *
         * @param timeout the deadline, or null
         * @return this builder
         * @throws IllegalArgumentException if timeout is negative
         */
        public Builder timeout(Duration timeout) {
            if (timeout != null && timeout.isNegative()) {
                throw new IllegalArgumentException("negative timeout " + timeout);
            }
            this.timeout = timeout;
            return this;
        }

        /**
         * Whether an explicit method may fall back to the next method of the engine's chain
         * instead of throwing {@link ZcopyUnsupportedException}.
         *
         * @param fallback true to allow falling back
         * @return this builder
         */
        public Builder fallback(boolean fallback) {
            this.fallback = fallback;
            return this;
        }

        /**
         * What to do with a regular-file source's page cache; see {@link Cache}.
         * {@link Cache#DIRECT} with a method other than Auto or read_write is an
         * {@link IllegalArgumentException} from the transfer.
         *
         * @param cache the policy
         * @return this builder
         * @throws NullPointerException if cache is null
         */
        public Builder cache(Cache cache) {
            this.cache = Objects.requireNonNull(cache, "cache");
            return this;
        }

        /**
         * The options.
         *
         * @return immutable options with the values set so far
         */
        public TransferOptions build() {
            return new TransferOptions(this);
        }
    }
}
