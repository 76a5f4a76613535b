package dev.zcopy;

import java.io.FileDescriptor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.Objects;

/**
 * Streams direct {@link ByteBuffer}s to a TCP socket with {@code MSG_ZEROCOPY}: the kernel
 * sends from the buffer's memory without copying it, and reports later, on the socket's error
 * queue, when it is done with each send (its <em>completion</em>).
 *
 * <p>Until a send's completion arrives the kernel may still read the buffer, so the sender
 * keeps a reference to it (the garbage collector cannot free it), and the caller must not
 * change its contents: check {@link #isComplete(long)} or {@link #poll(Duration)} before
 * reusing a buffer. Do not free the memory behind a buffer by other means (closing the
 * {@code Arena} of a segment, unmapping) before then. Ids start at 0 and increase by one per
 * {@link #send(ByteBuffer)}.
 *
 * <p>On loopback, and whenever the kernel cannot pin the pages, it copies the data anyway and
 * says so ({@link Stats#copied()}). The sender owns a duplicate of the socket's descriptor;
 * the channel stays the caller's. Every method is synchronized; close the sender (it is
 * {@link AutoCloseable}) before closing the channel.
 */
public final class ZeroCopySender implements AutoCloseable {
    /** How long {@link #close()} waits for outstanding completions. */
    public static final Duration DEFAULT_CLOSE_TIMEOUT = Duration.ofSeconds(30);

    private long handle;

    private ZeroCopySender(long handle) {
        this.handle = handle;
    }

    /**
     * A sender on a connected TCP socket (IPv4 or IPv6). Turns on {@code SO_ZEROCOPY} for the
     * socket.
     *
     * @param channel a connected TCP socket channel (borrowed; blocking or not)
     * @return a new sender, to be closed
     * @throws ClosedChannelException if the channel is closed
     * @throws ZcopyUnsupportedException if the socket cannot do MSG_ZEROCOPY (a Unix socket,
     *     or a kernel without it), or the channel is not the JDK's socket channel
     * @throws IOException if the kernel refuses
     */
    public static ZeroCopySender open(SocketChannel channel) throws IOException {
        Objects.requireNonNull(channel, "channel");
        if (!channel.isOpen()) {
            throw new ClosedChannelException();
        }
        FileDescriptor fd = Native.channelFd(channel);
        if (fd == null) {
            throw new ZcopyUnsupportedException("MSG_ZEROCOPY needs the JDK's SocketChannel implementation", 0);
        }
        return new ZeroCopySender(Native.senderOpen(fd));
    }

    /**
     * Sends the buffer's remaining bytes (position to limit) and advances its position to its
     * limit. Waits (with poll) while the socket's send buffer is full, for blocking and
     * non-blocking channels alike: every byte is queued in the kernel when this returns.
     *
     * @param buffer a direct buffer; unchanged and reachable until its send completes
     * @return the id of this send
     * @throws IllegalArgumentException if the buffer is not direct
     * @throws ClosedChannelException if the sender is closed
     * @throws ZcopyException if the kernel refuses (EPIPE, ECONNRESET, ...), with its errno
     * @throws IOException for other I/O errors
     */
    public synchronized long send(ByteBuffer buffer) throws IOException {
        Objects.requireNonNull(buffer, "buffer");
        if (!buffer.isDirect()) {
            throw new IllegalArgumentException("MSG_ZEROCOPY sends from a direct ByteBuffer");
        }
        long h = live();
        int pos = buffer.position();
        int len = buffer.remaining();
        long id = Native.senderSend(h, buffer, pos, len);
        buffer.position(buffer.limit());
        return id;
    }

    /**
     * Reads completions, waiting up to {@code timeout} for every send so far to complete.
     *
     * @param timeout how long to wait at most; {@link Duration#ZERO} only reads what has
     *     arrived, null waits as long as it takes
     * @return the id below which every send has completed (their buffers are free again)
     * @throws ClosedChannelException if the sender is closed
     * @throws IOException if reading the error queue fails
     */
    public synchronized long poll(Duration timeout) throws IOException {
        return Native.senderPoll(live(), ZeroCopy.nanos(timeout));
    }

    /**
     * Whether the send with this id has completed (its buffer may be reused). Only looks at
     * completions already read; call {@link #poll(Duration)} to read new ones.
     *
     * @param id an id returned by {@link #send(ByteBuffer)}
     * @return true once the kernel is done with that send
     * @throws ClosedChannelException if the sender is closed
     */
    public synchronized boolean isComplete(long id) throws ClosedChannelException {
        return id < stats().done();
    }

    /**
     * The sender's counters so far.
     *
     * @return a snapshot of the counters
     * @throws ClosedChannelException if the sender is closed
     */
    public synchronized Stats stats() throws ClosedChannelException {
        long[] s = new long[5];
        Native.senderStats(live(), s);
        return new Stats(s);
    }

    /**
     * Waits up to {@link #DEFAULT_CLOSE_TIMEOUT} for outstanding completions, then releases the
     * sender. Closing twice does nothing.
     *
     * @throws ZcopyTimeoutException if some completions never arrived: their buffers stay
     *     referenced for the life of the JVM rather than being freed while the kernel may read them
     * @throws IOException if reading the error queue fails
     */
    @Override
    public void close() throws IOException {
        close(DEFAULT_CLOSE_TIMEOUT);
    }

    /**
     * {@link #close()} with a chosen wait.
     *
     * @param timeout how long to wait for outstanding completions; null waits as long as it takes
     * @throws ZcopyTimeoutException if some completions never arrived (their buffers are kept)
     * @throws IOException if reading the error queue fails
     */
    public synchronized void close(Duration timeout) throws IOException {
        long h = handle;
        if (h == 0) {
            return;
        }
        handle = 0;
        Native.senderClose(h, ZeroCopy.nanos(timeout));
    }

    private long live() throws ClosedChannelException {
        if (handle == 0) {
            throw new ClosedChannelException();
        }
        return handle;
    }

    /** Counters of a {@link ZeroCopySender}. Immutable. */
    public static final class Stats {
        private final long sent;
        private final long done;
        private final long pending;
        private final long completions;
        private final long copied;

        Stats(long[] s) {
            this.sent = s[0];
            this.done = s[1];
            this.pending = s[2];
            this.completions = s[3];
            this.copied = s[4];
        }

        /**
         * Ids handed out so far (the next send gets this id).
         *
         * @return the number of sends
         */
        public long sent() {
            return sent;
        }

        /**
         * Every id below this has completed and its buffer is released.
         *
         * @return the completion watermark
         */
        public long done() {
            return done;
        }

        /**
         * Sends not yet completed ({@code sent - done}).
         *
         * @return the number of pending sends
         */
        public long pending() {
            return pending;
        }

        /**
         * Kernel sends whose completion arrived (a large buffer may take several).
         *
         * @return the number of kernel completions
         */
        public long completions() {
            return completions;
        }

        /**
         * Of {@link #completions()}, how many the kernel copied instead of sharing pages (always
         * all of them on loopback).
         *
         * @return the number of copied completions
         */
        public long copied() {
            return copied;
        }

        /**
         * Whether the kernel copied any send (zero-copy did not happen for it).
         *
         * @return true if at least one completion was copied
         */
        public boolean kernelCopied() {
            return copied > 0;
        }

        @Override
        public String toString() {
            return "Stats[sent=" + sent + ", done=" + done + ", pending=" + pending + ", completions=" + completions
                    + ", copied=" + copied + "]";
        }
    }
}
