package dev.zcopy;

import java.time.Duration;

/**
 * What {@link ZeroCopy#transfer(java.io.FileDescriptor, java.io.FileDescriptor, TransferOptions)}
 * did. Immutable.
 */
public final class TransferReport {
    private final long bytes;
    private final Method method;
    private final long syscalls;
    private final int fallbacks;
    private final long zcSends;
    private final long zcCopied;
    private final boolean wouldBlock;
    private final Duration elapsed;

    TransferReport(long[] slots) {
        this.bytes = slots[0];
        this.method = Method.fromNumber((int) slots[1]);
        this.syscalls = slots[2];
        this.fallbacks = (int) Math.min(slots[3], Integer.MAX_VALUE);
        this.zcSends = slots[4];
        this.zcCopied = slots[5];
        this.wouldBlock = slots[6] != 0;
        this.elapsed = Duration.ofNanos(slots[7]);
    }

    /**
     * Bytes that reached the destination.
     *
     * @return the byte count
     */
    public long bytes() {
        return bytes;
    }

    /**
     * The method that moved the last bytes (the requested one when nothing moved).
     *
     * @return the method
     */
    public Method method() {
        return method;
    }

    /**
     * Every system call the transfer issued, classification and bookkeeping included.
     *
     * @return the syscall count
     */
    public long syscalls() {
        return syscalls;
    }

    /**
     * How many methods the engine gave up on during the call (fallbacks taken).
     *
     * @return the number of fallbacks
     */
    public int fallbacks() {
        return fallbacks;
    }

    /**
     * {@code MSG_ZEROCOPY} sends whose completion arrived.
     *
     * @return the number of completed zero-copy sends
     */
    public long zeroCopySends() {
        return zcSends;
    }

    /**
     * Of {@link #zeroCopySends()}, how many the kernel copied anyway (all of them on loopback).
     *
     * @return the number of copied zero-copy sends
     */
    public long zeroCopyCopied() {
        return zcCopied;
    }

    /**
     * True when the transfer stopped early because a non-blocking descriptor was not ready and
     * the timeout was zero; {@link #bytes()} says how far it got. NIO returns a partial count in
     * this case, and so does zcopy.
     *
     * @return whether the transfer stopped at a wait
     */
    public boolean wouldBlock() {
        return wouldBlock;
    }

    /**
     * Wall time of the call.
     *
     * @return the elapsed time
     */
    public Duration elapsed() {
        return elapsed;
    }

    @Override
    public String toString() {
        return "TransferReport[bytes=" + bytes + ", method=" + method.engineName() + ", syscalls=" + syscalls
                + ", fallbacks=" + fallbacks + ", zeroCopySends=" + zcSends + ", zeroCopyCopied=" + zcCopied
                + ", wouldBlock=" + wouldBlock + ", elapsed=" + elapsed + "]";
    }
}
