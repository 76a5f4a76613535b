package dev.zcopy;

/** Bytes moved each way by {@link ZeroCopy#relay(java.nio.channels.SocketChannel, java.nio.channels.SocketChannel)}. Immutable. */
public final class RelayReport {
    private final long aToB;
    private final long bToA;
    private final long syscalls;

    RelayReport(long[] slots) {
        this.aToB = slots[0];
        this.bToA = slots[1];
        this.syscalls = slots[2];
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

    @Override
    public String toString() {
        return "RelayReport[aToB=" + aToB + ", bToA=" + bToA + ", syscalls=" + syscalls + "]";
    }
}
