package dev.zcopy;

import java.io.FileDescriptor;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Every {@code native} method of zcopy, implemented by {@code libzcopy_jni.so}. This is the
 * bridge, not the API: use {@link dev.zcopy.ZeroCopy} and {@link dev.zcopy.ZeroCopySender}.
 * Signatures may change in any release.
 *
 * <p>Descriptors are passed as {@link FileDescriptor} objects; the native side reads their
 * {@code fd} field, duplicates it at once and checks the field again, so a descriptor closed
 * by another thread is never confused with a file that reused its number. Errors are thrown as
 * the exceptions of the error table ({@link dev.zcopy.ZcopyException} and its subclasses,
 * {@link IllegalArgumentException}, {@link NullPointerException}, {@link AssertionError} for a
 * panic in native code).
 */
final class Native {
    /** Length of the {@code long[]} report of {@link #transfer}. */
    static final int REPORT_LEN = 8;
    /** Report slot: bytes that reached the destination. */
    static final int R_BYTES = 0;
    /** Report slot: the method number that moved the last bytes. */
    static final int R_METHOD = 1;
    /** Report slot: syscalls issued. */
    static final int R_SYSCALLS = 2;
    /** Report slot: fallbacks taken. */
    static final int R_FALLBACKS = 3;
    /** Report slot: MSG_ZEROCOPY sends completed. */
    static final int R_ZC_SENDS = 4;
    /** Report slot: ... of which the kernel copied. */
    static final int R_ZC_COPIED = 5;
    /** Report slot: 1 when the transfer stopped at a wait with a zero timeout. */
    static final int R_WOULD_BLOCK = 6;
    /** Report slot: elapsed nanoseconds. */
    static final int R_ELAPSED_NANOS = 7;

    static {
        NativeLoader.load();
    }

    private Native() {
    }

    /**
     * Makes sure the native library is loaded (loading it on the first call).
     *
     * @throws UnsatisfiedLinkError if it cannot be loaded or is from another build
     */
    static void ensureLoaded() {
        NativeLoader.load();
    }

    /**
     * The native library's version.
     *
     * @return the version, e.g. "0.1.0"
     */
    static native String version();

    /**
     * The methods this kernel supports.
     *
     * @return bit {@code 1 << method number} set for each supported method
     */
    static native int capabilities();

    /**
     * The {@code FileDescriptor fd} field of a JDK channel implementation (file, socket and
     * pipe channels), read over JNI.
     *
     * @param channel a channel
     * @return its descriptor object, or null if the class has no such field
     */
    static native FileDescriptor channelFd(Object channel);

    /**
     * The {@code readable} / {@code writable} fields of a JDK {@code FileChannel}
     * implementation.
     *
     * @param channel a file channel
     * @return bit 0 readable, bit 1 writable; -1 if the class has no such fields
     */
    static native int channelAccess(Object channel);

    /**
     * The raw number in a {@link FileDescriptor}.
     *
     * @param fd a descriptor object
     * @return its number, -1 when it is not valid
     */
    static native int fdNumber(FileDescriptor fd);

    /**
     * The engine's transfer from {@code src} to {@code dst}.
     *
     * @param src the source descriptor (borrowed)
     * @param dst the destination descriptor (borrowed)
     * @param method a method number
     * @param offset source offset, or -1 to use and advance the source's position
     * @param count at most this many bytes, or -1 for until end of file
     * @param timeoutNanos deadline of the call, or -1 to wait as long as it takes
     * @param fallback whether an explicit method may fall back
     * @param dstPosition write the destination (a regular file) at this position without
     *     changing its file position, or -1 to write at and advance its position
     * @param cache a {@link Cache} number
     * @param report receives {@link #REPORT_LEN} slots on success and on would-block
     * @throws IOException the engine's error, mapped by the error table
     */
    static native void transfer(FileDescriptor src, FileDescriptor dst, int method, long offset, long count,
            long timeoutNanos, boolean fallback, long dstPosition, int cache, long[] report) throws IOException;

    /**
     * The engine's {@code send_parts}: part {@code i} is the file range {@code files[i]} at
     * ({@code ranges[2i]}, {@code ranges[2i+1]}) when {@code files[i]} is not null, else the
     * bytes of {@code data[i]} (a {@code byte[]} or a direct ByteBuffer) at (position, length).
     *
     * @param dst the destination socket (borrowed)
     * @param data the bytes parts' memory, null at file parts
     * @param files the file parts' descriptors, null at bytes parts
     * @param ranges two slots per part
     * @param skip bytes of the response an earlier call delivered
     * @param timeoutNanos deadline of the call, or -1 to wait as long as it takes
     * @param cache a {@link Cache} number, for the file parts
     * @param report receives {@link #REPORT_LEN} slots on success and on would-block
     * @throws IOException the engine's error, mapped by the error table
     */
    static native void sendParts(FileDescriptor dst, Object[] data, FileDescriptor[] files, long[] ranges,
            long skip, long timeoutNanos, int cache, long[] report) throws IOException;

    /**
     * The engine's splice relay between two stream sockets, until both directions end.
     *
     * @param a one socket (borrowed)
     * @param b the other socket (borrowed)
     * @param timeoutNanos deadline, or -1 to wait as long as it takes
     * @param report receives [aToB, bToA, syscalls, buffered (1 or 0)], also when it throws
     * @throws IOException the engine's error, mapped by the error table
     */
    static native void relay(FileDescriptor a, FileDescriptor b, long timeoutNanos, long[] report) throws IOException;

    /**
     * Opens a MSG_ZEROCOPY sender on a duplicate of a TCP socket.
     *
     * @param socket the socket (borrowed; the sender keeps its own duplicate)
     * @return a handle for the other {@code sender*} methods, freed by {@link #senderClose}
     * @throws IOException the engine's error, mapped by the error table
     */
    static native long senderOpen(FileDescriptor socket) throws IOException;

    /**
     * Sends bytes of a direct buffer with MSG_ZEROCOPY, keeping the buffer reachable until the
     * kernel's completion.
     *
     * @param handle a live sender handle
     * @param buffer a direct buffer
     * @param position first byte to send
     * @param length how many bytes
     * @return the id of the send
     * @throws IOException the engine's error, mapped by the error table
     */
    static native long senderSend(long handle, ByteBuffer buffer, int position, int length) throws IOException;

    /**
     * Waits for completions.
     *
     * @param handle a live sender handle
     * @param timeoutNanos how long to wait at most, or -1 without limit
     * @return the id below which every send has completed
     * @throws IOException the engine's error, mapped by the error table
     */
    static native long senderPoll(long handle, long timeoutNanos) throws IOException;

    /**
     * The sender's counters.
     *
     * @param handle a live sender handle
     * @param out receives [sent, done, pending, completions, copied]
     */
    static native void senderStats(long handle, long[] out);

    /**
     * Waits for outstanding completions, then frees the sender (the handle is dead afterwards,
     * even when this throws).
     *
     * @param handle a live sender handle
     * @param timeoutNanos how long to wait at most, or -1 without limit
     * @throws IOException the engine's error (a timeout), mapped by the error table
     */
    static native void senderClose(long handle, long timeoutNanos) throws IOException;

    /**
     * Panics in native code, for the test that a panic becomes {@link AssertionError} instead of
     * crossing into the JVM.
     *
     * @throws AssertionError always
     */
    static native void panicForTest();
}
