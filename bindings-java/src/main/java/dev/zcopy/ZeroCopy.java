package dev.zcopy;

import java.io.FileDescriptor;
import java.io.IOException;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.Channel;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.channels.NonReadableChannelException;
import java.nio.channels.NonWritableChannelException;
import java.nio.channels.Pipe;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SelectableChannel;
import java.nio.channels.SocketChannel;
import java.nio.channels.WritableByteChannel;
import java.time.Duration;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * The zcopy engine for Java: zero-copy transfers between files, sockets and pipes
 * ({@code copy_file_range}, {@code sendfile}, {@code splice}, {@code MSG_ZEROCOPY}), picked at
 * run time with a fallback that never loses or duplicates a byte.
 *
 * <p>{@link #transferTo} and {@link #transferFrom} are drop-ins for
 * {@link FileChannel#transferTo} and {@link FileChannel#transferFrom}: same return values, same
 * exceptions, with the improvements documented on each. {@link #transfer} is the engine's own
 * transfer on {@link FileDescriptor}s, {@link #relay} joins two sockets with {@code splice}.
 *
 * <p><b>Descriptors are borrowed.</b> Nothing here closes a channel or descriptor (except on
 * interrupt, as NIO does), and file status flags such as {@code O_NONBLOCK} are the same after
 * a call as before. The engine works on duplicates of the descriptors: a channel closed by
 * another thread during a call never makes it write into a file that reused the number.
 *
 * <p><b>Pages, not bytes, are shared.</b> After {@code sendfile}, {@code splice} or
 * {@code MSG_ZEROCOPY} return, the kernel may still hold references to the source file's
 * pages: writes to that region of the file made afterwards may still reach the peer. Do not
 * modify a region until the peer has it.
 *
 * <p><b>Native access.</b> The first use loads {@code libzcopy_jni.so} from the jar (see
 * {@link dev.zcopy.NativeLoader}). On JDK 24 and later run with
 * {@code --enable-native-access=ALL-UNNAMED} to avoid the JVM's warning.
 *
 * <p><b>Virtual threads.</b> The engine's waits happen in native code: on a virtual thread they
 * occupy the carrier thread for their duration (as file I/O does), in slices of at most 250 ms
 * for the drop-ins.
 *
 * <p>All methods are thread-safe.
 */
public final class ZeroCopy {
    /**
     * Blocking waits of the drop-ins are cut into slices of this length, so an asynchronous
     * close or an interrupt is noticed within it (the engine's wait itself is a plain poll).
     */
    private static final long SLICE_NANOS = TimeUnit.MILLISECONDS.toNanos(250);
    private static final int JDK_FEATURE = Runtime.version().feature();
    private static final int READABLE = 1;
    private static final int WRITABLE = 2;

    private ZeroCopy() {
    }

    /**
     * A drop-in for {@code src.transferTo(position, count, target)}: moves up to {@code count}
     * bytes of {@code src}'s file, starting at {@code position}, to {@code target}, with
     * {@code sendfile}, {@code splice} or {@code copy_file_range} chosen by the engine. The
     * bytes are written at {@code target}'s position (which advances, as with
     * {@code target.write}); {@code src}'s position does not change.
     *
     * <p>Same return value and exceptions as the JDK, with these improvements:
     * <ul>
     *   <li>a blocking target always gets the whole range, {@code min(count, size - position)}
     *       bytes, as the method's specification promises (the JDK may return less);</li>
     *   <li>more than 2 GiB in one call (the JDK stops at 0x7ffff000 bytes per call);</li>
     *   <li>the same from a virtual thread (where the JDK returns a partial count);</li>
     *   <li>waiting for a slow peer is a {@code poll}, never a spin.</li>
     * </ul>
     * A non-blocking target gets what fits now: a partial count, or 0, as NIO does. Zero-copy
     * applies to the JDK's {@code FileChannel}, {@code SocketChannel} and
     * {@code Pipe.SinkChannel} targets; any other target (or a {@code src} that is not the
     * JDK's {@code FileChannel}) is handed to the JDK's own {@code transferTo}. Files the
     * kernel reports with size 0 (procfs) are handed to the JDK too.
     *
     * <p>A close of either channel by another thread ends the call within a fraction of a second
     * with {@link AsynchronousCloseException}; an interrupt closes both channels and throws
     * {@link ClosedByInterruptException}, as NIO does. A failure after some bytes moved returns
     * the count moved; with nothing moved it throws.
     *
     * @param src the file to read (borrowed, not closed)
     * @param position where in the file to start; at least 0
     * @param count at most this many bytes; at least 0
     * @param target where to write (borrowed, not closed)
     * @return the number of bytes written to {@code target}, possibly 0 (position past the end,
     *     count 0, a non-blocking target that is full)
     * @throws IllegalArgumentException if position or count is negative
     * @throws NonReadableChannelException if {@code src} was not opened for reading
     * @throws NonWritableChannelException if {@code target} is a file channel not opened for writing
     * @throws ClosedChannelException if either channel is closed
     * @throws AsynchronousCloseException if another thread closes either channel during the call
     * @throws ClosedByInterruptException if the thread is interrupted during the call
     * @throws IOException if the transfer fails with nothing moved ({@link ZcopyException}
     *     carries the errno, e.g. EPIPE for a closed peer)
     */
    public static long transferTo(FileChannel src, long position, long count, WritableByteChannel target)
            throws IOException {
        Objects.requireNonNull(src, "src");
        Objects.requireNonNull(target, "target");
        FileDescriptor sfd = Native.channelFd(src);
        if (sfd == null) {
            return src.transferTo(position, count, target);
        }
        // The JDK's checks, in the JDK's order.
        if (!src.isOpen() || !target.isOpen()) {
            throw new ClosedChannelException();
        }
        if ((Native.channelAccess(src) & READABLE) == 0) {
            throw new NonReadableChannelException();
        }
        FileDescriptor tfd = null;
        boolean targetMayWait = true;
        if (target instanceof FileChannel) {
            tfd = Native.channelFd(target);
            if (tfd != null && (Native.channelAccess(target) & WRITABLE) == 0) {
                throw new NonWritableChannelException();
            }
            targetMayWait = false;
        } else if (target instanceof SocketChannel || target instanceof Pipe.SinkChannel) {
            tfd = Native.channelFd(target);
        }
        if (position < 0 || count < 0) {
            throw new IllegalArgumentException();
        }
        if (tfd == null || (target instanceof SocketChannel && !((SocketChannel) target).isConnected())) {
            return src.transferTo(position, count, target);
        }
        long size = src.size();
        if (position > size) {
            return 0;
        }
        if (size == 0) {
            return src.transferTo(position, count, target);
        }
        long want = Math.min(count, size - position);
        if (want == 0) {
            return 0;
        }
        long done = pump(src, target, sfd, tfd, position, want, -1, nonBlocking(target), targetMayWait);
        if (done < 0) {
            return src.transferTo(position, count, target);
        }
        return done;
    }

    /**
     * A drop-in for {@code dst.transferFrom(src, position, count)}: moves up to {@code count}
     * bytes from {@code src} into {@code dst}'s file at {@code position}, without changing
     * {@code dst}'s position. A {@code SocketChannel} or {@code Pipe.SourceChannel} source is
     * spliced into the file (the JDK copies through an 8 KiB heap buffer); a {@code FileChannel}
     * source uses {@code copy_file_range} from its position, which advances by the count, as
     * in the JDK. A stream source is never read past what is written.
     *
     * <p>Same return value and exceptions as the JDK. A position past the end of {@code dst}
     * behaves as the running JDK does: JDK 17 returns 0; JDK 21 and later write there and
     * extend the file. A blocking stream source is read until {@code count} bytes or its end
     * of stream; a non-blocking one gives what it has now (possibly 0). Any other source, a
     * {@code dst} that is not the JDK's {@code FileChannel}, an append-mode {@code dst} and a
     * procfs-like source of size 0 are handed to the JDK's own {@code transferFrom}. Closes and
     * interrupts behave as for {@link #transferTo}.
     *
     * @param src where to read (borrowed, not closed)
     * @param dst the file to write (borrowed, not closed)
     * @param position where in the file to write; at least 0
     * @param count at most this many bytes; at least 0
     * @return the number of bytes written into the file, possibly 0
     * @throws IllegalArgumentException if position or count is negative
     * @throws NonReadableChannelException if {@code src} is a file channel not opened for reading
     * @throws NonWritableChannelException if {@code dst} was not opened for writing
     * @throws ClosedChannelException if either channel is closed
     * @throws AsynchronousCloseException if another thread closes either channel during the call
     * @throws ClosedByInterruptException if the thread is interrupted during the call
     * @throws IOException if the transfer fails with nothing moved
     */
    public static long transferFrom(ReadableByteChannel src, FileChannel dst, long position, long count)
            throws IOException {
        Objects.requireNonNull(src, "src");
        Objects.requireNonNull(dst, "dst");
        FileDescriptor dfd = Native.channelFd(dst);
        if (dfd == null) {
            return dst.transferFrom(src, position, count);
        }
        if (!dst.isOpen() || !src.isOpen()) {
            throw new ClosedChannelException();
        }
        boolean srcIsFile = src instanceof FileChannel;
        FileDescriptor sfd = null;
        if (srcIsFile || src instanceof SocketChannel || src instanceof Pipe.SourceChannel) {
            sfd = Native.channelFd(src);
        }
        boolean srcReadable = !srcIsFile || sfd == null || (Native.channelAccess(src) & READABLE) != 0;
        // JDK 21+ checks a file source before the destination; JDK 17 only when it maps it.
        boolean modern = JDK_FEATURE >= 21;
        if (modern && !srcReadable) {
            throw new NonReadableChannelException();
        }
        if ((Native.channelAccess(dst) & WRITABLE) == 0) {
            throw new NonWritableChannelException();
        }
        if (position < 0 || count < 0) {
            throw new IllegalArgumentException();
        }
        if (!modern && position > dst.size()) {
            return 0;
        }
        if (sfd == null || (src instanceof SocketChannel && !((SocketChannel) src).isConnected())) {
            return dst.transferFrom(src, position, count);
        }
        if (srcIsFile) {
            FileChannel fsrc = (FileChannel) src;
            long size = fsrc.size();
            if (size == 0) {
                return dst.transferFrom(src, position, count);
            }
            if (!srcReadable && count > 0 && fsrc.position() < size) {
                throw new NonReadableChannelException();
            }
        }
        if (count == 0) {
            return 0;
        }
        long done = pump(src, dst, sfd, dfd, -1, count, position, nonBlocking(src), !srcIsFile);
        if (done < 0) {
            return dst.transferFrom(src, position, count);
        }
        return done;
    }

    /**
     * The engine's transfer from {@code src} to {@code dst}, with the C ABI's rules:
     * <ul>
     *   <li>the source is read from {@link TransferOptions#offset()} (its position unchanged)
     *       or, without an offset, from its position, which advances by the bytes delivered on
     *       every outcome, so a caller can resume after a timeout or an error;</li>
     *   <li>the destination is written at its position, which advances ({@code O_APPEND}
     *       appends): two calls concatenate;</li>
     *   <li>the timeout is one deadline for the whole call;</li>
     *   <li>with a non-blocking descriptor and a zero timeout the call returns at the first
     *       wait with {@link TransferReport#wouldBlock()} set;</li>
     *   <li>a transfer into a closed peer throws {@link ZcopyException} with EPIPE and never
     *       kills the process with SIGPIPE.</li>
     * </ul>
     *
     * @param src the source descriptor (borrowed, not closed)
     * @param dst the destination descriptor (borrowed, not closed)
     * @param options method, offset, count, timeout and fallback; {@link TransferOptions#defaults()}
     * @return what the transfer did
     * @throws NullPointerException if an argument is null
     * @throws ZcopyUnsupportedException if an explicit method cannot work and fallback was not allowed
     * @throws ZcopyTimeoutException if the deadline passed
     * @throws ZcopyException if the kernel refused, with its errno; EBADF for a descriptor that is
     *     not valid (closed, or never opened)
     * @throws IllegalArgumentException if the options contradict each other or the descriptors
     * @throws IOException for other I/O errors
     */
    public static TransferReport transfer(FileDescriptor src, FileDescriptor dst, TransferOptions options)
            throws IOException {
        Objects.requireNonNull(src, "src");
        Objects.requireNonNull(dst, "dst");
        Objects.requireNonNull(options, "options");
        long[] r = new long[Native.REPORT_LEN];
        Native.transfer(src, dst, options.method().number(), options.offset(), options.count(),
                nanos(options.timeout()), options.fallback(), -1, options.cache().number(), r);
        return new TransferReport(r);
    }

    /**
     * Sends a whole response in one call: the parts, in order, to {@code target}. Consecutive
     * bytes parts go out in one {@code sendmsg}, every part but the last with MSG_MORE (a file
     * part followed by more parts inside one TCP_CORK window; the socket's own cork state is
     * kept), so a small header and a 4 KiB file leave as one TCP segment; file parts use the
     * engine's {@code sendfile}/{@code splice}. Waits as long as it takes on a blocking channel;
     * see {@link #sendParts(SocketChannel, List, long, Duration, Cache)}.
     *
     * @param target the socket (borrowed, not closed)
     * @param parts the response
     * @return the bytes sent: the whole response on a blocking channel
     * @throws IOException as {@link #sendParts(SocketChannel, List, long, Duration, Cache)}
     */
    public static long sendParts(SocketChannel target, List<Part> parts) throws IOException {
        return sendParts(target, parts, 0, null, Cache.KEEP);
    }

    /**
     * {@link #sendParts(SocketChannel, List, long, Duration, Cache)} with {@link Cache#KEEP}.
     *
     * @param target the socket (borrowed, not closed)
     * @param parts the response
     * @param skip bytes of this response an earlier call delivered
     * @param timeout one deadline for the call, or null to wait as long as it takes
     * @return the bytes of the response this call delivered
     * @throws IOException as {@link #sendParts(SocketChannel, List, long, Duration, Cache)}
     */
    public static long sendParts(SocketChannel target, List<Part> parts, long skip, Duration timeout)
            throws IOException {
        return sendParts(target, parts, skip, timeout, Cache.KEEP);
    }

    /**
     * {@link #sendParts(SocketChannel, List)} from byte {@code skip} of the response, with one
     * deadline. Every exception carries {@link ZcopyException#bytesTransferred()}, the bytes of
     * the response this call delivered: call again with {@code skip} plus that to send exactly
     * the rest. On a non-blocking channel the call never waits and returns what fitted.
     *
     * @param target the socket (borrowed, not closed)
     * @param parts the response
     * @param skip bytes of this response an earlier call delivered
     * @param timeout one deadline for the call, or null to wait as long as it takes
     * @param cache what the file parts' sends do to the page cache ({@link Cache})
     * @return the bytes of the response this call delivered
     * @throws ClosedChannelException if the channel is closed
     * @throws AsynchronousCloseException if it is closed by another thread during the call
     * @throws ClosedByInterruptException if the thread is interrupted (the channel is closed)
     * @throws IllegalArgumentException if a file range is past its file's end, or {@code skip}
     *     past the response's end (before any byte is sent)
     * @throws ZcopyUnsupportedException if a channel is not the JDK's implementation
     * @throws ZcopyTimeoutException if the deadline passed
     * @throws ZcopyException if the peer reset or the kernel refused, with its errno; EINVAL
     *     if a file shrank under its range during the call (the response is cut short)
     * @throws IOException for other I/O errors
     */
    public static long sendParts(SocketChannel target, List<Part> parts, long skip, Duration timeout, Cache cache)
            throws IOException {
        Objects.requireNonNull(target, "target");
        Objects.requireNonNull(cache, "cache");
        Objects.requireNonNull(parts, "parts");
        if (skip < 0) {
            throw new IllegalArgumentException("negative skip");
        }
        if (!target.isOpen()) {
            throw new ClosedChannelException();
        }
        FileDescriptor fd = Native.channelFd(target);
        if (fd == null) {
            throw new ZcopyUnsupportedException("sendParts needs the JDK's SocketChannel implementation", 0);
        }
        int n = parts.size();
        Object[] data = new Object[n];
        FileDescriptor[] files = new FileDescriptor[n];
        long[] ranges = new long[2 * n];
        for (int i = 0; i < n; i++) {
            Part p = Objects.requireNonNull(parts.get(i), "part");
            if (p.file != null) {
                files[i] = Native.channelFd(p.file);
                if (files[i] == null) {
                    throw new ZcopyUnsupportedException("a file part needs the JDK's FileChannel implementation", 0);
                }
            } else {
                data[i] = p.data;
            }
            ranges[2 * i] = p.position;
            ranges[2 * i + 1] = p.length;
        }
        boolean nonBlocking = !target.isBlocking();
        long total = nanos(timeout);
        long deadline = total < 0 ? 0 : System.nanoTime() + total;
        long[] r = new long[Native.REPORT_LEN];
        long done = 0;
        while (true) {
            checkOpen(target, target);
            // Blocking waits in slices, so an asynchronous close or an interrupt is noticed.
            long slice = nonBlocking ? 0 : SLICE_NANOS;
            if (!nonBlocking && total >= 0) {
                slice = Math.max(0, Math.min(SLICE_NANOS, deadline - System.nanoTime()));
            }
            try {
                Native.sendParts(fd, data, files, ranges, skip + done, slice, cache.number(), r);
                return done + r[Native.R_BYTES];
            } catch (ZcopyTimeoutException e) {
                done += e.bytesTransferred();
                if (total >= 0 && System.nanoTime() - deadline >= 0) {
                    checkOpen(target, target);
                    throw new ZcopyTimeoutException("sendParts: the deadline passed", done);
                }
            } catch (ZcopyUnsupportedException e) {
                throw new ZcopyUnsupportedException(e.getMessage(), done + e.bytesTransferred());
            } catch (ZcopyException e) {
                checkOpen(target, target);
                throw new ZcopyException(e.getMessage(), e.errno(), done + e.bytesTransferred());
            }
        }
    }

    /**
     * Relays two connected stream sockets into each other with {@code splice} until both
     * directions have ended: end of stream on one side becomes {@code shutdownOutput} on the
     * other (half-close), and the other direction keeps flowing. Java has no splice; this moves
     * the bytes without copying them through the JVM. Runs on the calling thread; works with
     * blocking and non-blocking channels and does not close them.
     *
     * @param a one socket (borrowed)
     * @param b the other socket (borrowed)
     * @return the bytes moved each way
     * @throws ClosedChannelException if either channel is closed
     * @throws ZcopyUnsupportedException if a channel is not the JDK's socket channel
     * @throws ZcopyException if a peer resets or the kernel refuses, with its errno
     * @throws IOException for other I/O errors
     */
    public static RelayReport relay(SocketChannel a, SocketChannel b) throws IOException {
        return relay(a, b, null);
    }

    /**
     * {@link #relay(SocketChannel, SocketChannel)} with one deadline for the whole relay.
     *
     * @param a one socket (borrowed)
     * @param b the other socket (borrowed)
     * @param timeout the deadline, or null to wait until both directions end
     * @return the bytes moved each way
     * @throws ClosedChannelException if either channel is closed
     * @throws ZcopyUnsupportedException if a channel is not the JDK's socket channel
     * @throws ZcopyTimeoutException if the deadline passed
     * @throws ZcopyException if a peer resets or the kernel refuses, with its errno
     * @throws IOException for other I/O errors
     */
    public static RelayReport relay(SocketChannel a, SocketChannel b, Duration timeout) throws IOException {
        Objects.requireNonNull(a, "a");
        Objects.requireNonNull(b, "b");
        if (!a.isOpen() || !b.isOpen()) {
            throw new ClosedChannelException();
        }
        FileDescriptor fa = Native.channelFd(a);
        FileDescriptor fb = Native.channelFd(b);
        if (fa == null || fb == null) {
            throw new ZcopyUnsupportedException("relay needs the JDK's SocketChannel implementation", 0);
        }
        long[] r = new long[4];
        Native.relay(fa, fb, nanos(timeout), r);
        return new RelayReport(r);
    }

    /**
     * The explicit methods this kernel supports, probed once per process.
     *
     * @return an unmodifiable set (never containing {@link Method#AUTO})
     */
    public static Set<Method> capabilities() {
        int bits = Native.capabilities();
        EnumSet<Method> set = EnumSet.noneOf(Method.class);
        for (Method m : Method.values()) {
            if (m != Method.AUTO && (bits & (1 << m.number())) != 0) {
                set.add(m);
            }
        }
        return Collections.unmodifiableSet(set);
    }

    /**
     * The version of the native engine (the same as the jar's; a mismatch refuses to load).
     *
     * @return the version, e.g. "0.1.0"
     */
    public static String version() {
        return Native.version();
    }

    /** -1 for "no timeout", else the nanoseconds, saturated. */
    static long nanos(Duration d) {
        if (d == null) {
            return -1;
        }
        try {
            return d.toNanos();
        } catch (ArithmeticException e) {
            return Long.MAX_VALUE;
        }
    }

    private static boolean nonBlocking(Channel ch) {
        return ch instanceof SelectableChannel && !((SelectableChannel) ch).isBlocking();
    }

    /**
     * Moves {@code count} bytes in slices of at most {@link #SLICE_NANOS} of waiting. Returns the
     * bytes moved, or -1 when the engine cannot handle the pair and nothing moved (the caller
     * then asks the JDK).
     */
    private static long pump(Channel srcCh, Channel dstCh, FileDescriptor sfd, FileDescriptor dfd, long offset,
            long count, long dstPosition, boolean nonBlocking, boolean mayWait) throws IOException {
        long[] r = new long[Native.REPORT_LEN];
        long timeout = nonBlocking ? 0 : (mayWait ? SLICE_NANOS : -1);
        long done = 0;
        while (true) {
            checkOpen(srcCh, dstCh);
            try {
                Native.transfer(sfd, dfd, Method.AUTO.number(), offset < 0 ? -1 : offset + done, count - done,
                        timeout, false, dstPosition < 0 ? -1 : dstPosition + done, Cache.KEEP.number(), r);
                // Finished: the count, the source's end, or (non-blocking) nothing more fits now.
                return done + r[Native.R_BYTES];
            } catch (ZcopyTimeoutException e) {
                // A slice ended; go on unless closed or interrupted.
                done += e.bytesTransferred();
                if (done >= count) {
                    return done;
                }
            } catch (ZcopyUnsupportedException e) {
                long total = done + e.bytesTransferred();
                if (total == 0) {
                    return -1;
                }
                return total;
            } catch (ZcopyException e) {
                long total = done + e.bytesTransferred();
                checkOpen(srcCh, dstCh);
                if (total > 0) {
                    return total;
                }
                throw e;
            }
        }
    }

    /** NIO's reaction to an interrupt or an asynchronous close during a blocking operation. */
    private static void checkOpen(Channel a, Channel b) throws IOException {
        if (Thread.currentThread().isInterrupted()) {
            ClosedByInterruptException e = new ClosedByInterruptException();
            closeQuietly(a, e);
            closeQuietly(b, e);
            throw e;
        }
        if (!a.isOpen() || !b.isOpen()) {
            throw new AsynchronousCloseException();
        }
    }

    private static void closeQuietly(Channel c, Exception into) {
        try {
            c.close();
        } catch (IOException e) {
            into.addSuppressed(e);
        }
    }
}
