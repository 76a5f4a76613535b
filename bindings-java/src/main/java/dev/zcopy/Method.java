package dev.zcopy;

/**
 * How the engine moves bytes. The numbers are stable and shared with the C ABI
 * ({@code zcopy_method}) and every other binding.
 */
public enum Method {
    /** Pick the cheapest correct path for the descriptor pair and fall back at run time. */
    AUTO(0, "auto"),
    /** {@code read(2)} + {@code write(2)} through a buffer: works for everything. */
    READ_WRITE(1, "read_write"),
    /** {@code mmap(2)} the source file and {@code write(2)} from the mapping. */
    MMAP(2, "mmap"),
    /** {@code sendfile(2)}: file to anything, in the kernel. */
    SENDFILE(3, "sendfile"),
    /** {@code splice(2)} through a pooled pipe unless one side is a pipe. */
    SPLICE(4, "splice"),
    /** {@code copy_file_range(2)}: file to file, reflink or in-kernel copy. */
    COPY_FILE_RANGE(5, "copy_file_range"),
    /** {@code send(2)} with {@code MSG_ZEROCOPY} from a mapping of the source file, to a TCP socket. */
    MSG_ZEROCOPY(6, "msg_zerocopy");

    private final int number;
    private final String engineName;

    Method(int number, String engineName) {
        this.number = number;
        this.engineName = engineName;
    }

    /**
     * The stable number of this method (as in the C header).
     *
     * @return 0 for {@link #AUTO} up to 6 for {@link #MSG_ZEROCOPY}
     */
    public int number() {
        return number;
    }

    /**
     * The engine's lower-case name of this method ("auto", "sendfile", ...), as printed by
     * the {@code zcopy} command line tool.
     *
     * @return the stable lower-case name
     */
    public String engineName() {
        return engineName;
    }

    /**
     * The method with this stable number.
     *
     * @param number a number from {@link #number()}
     * @return the method
     * @throws IllegalArgumentException if no method has this number
     */
    public static Method fromNumber(int number) {
        for (Method m : values()) {
            if (m.number == number) {
                return m;
            }
        }
        throw new IllegalArgumentException("unknown zcopy method number " + number);
    }
}
