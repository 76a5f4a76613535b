package dev.zcopy;

/** Bytes moved each way by {@link ZeroCopy#relay(java.nio.channels.SocketChannel, java.nio.channels.SocketChannel)}. Immutable. */
public final class RelayReport {
    private final long aToB;
    private final long bToA;
    private final long syscalls;
    private final boolean buffered;

    RelayReport(long[] slots) {
        this.aToB = slots[0];
        this.bToA = slots[1];
        this.syscalls = slots[2];
        this.buffered = slots[3] != 0;
    }

    /**
     * Bytes delivered from the first channel to the second.
     *
     * @return the byte count a to b
     */
    public long aToB() {
        return aToB;
    }

    /**
     * Bytes delivered from the second channel to the first.
     *
     * @return the byte count b to a
     */
    public long bToA() {
        return bToA;
    }

    /**
     * Every system call the relay issued.
     *
     * @return the syscall count
     */
    public long syscalls() {
        return syscalls;
    }

    /**
     * Whether a direction found the per-user pipe budget ({@code fs.pipe-user-pages-soft})
     * exhausted and moved its bytes with recv/send through a 64 KiB buffer instead of
     * {@code splice} through pipes: the relay still worked, with two copies per byte. A hint to
     * raise the limit, not an error.
     *
     * @return true when at least one direction was buffered
     */
    public boolean buffered() {
        return buffered;
    }

    @Override
    public String toString() {
        return "RelayReport[aToB=" + aToB + ", bToA=" + bToA + ", syscalls=" + syscalls
                + ", buffered=" + buffered + "]";
    }
}
