package dev.zcopy;

import java.io.IOException;

/**
 * An engine error: the kernel refused an operation ({@link #errno()} says why), or a subclass
 * for the engine's other outcomes ({@link ZcopyUnsupportedException},
 * {@link ZcopyTimeoutException}).
 *
 * <p>Like every zcopy error it says how many bytes reached the destination before it
 * ({@link #bytesTransferred()}), so a caller can resume.
 */
public class ZcopyException extends IOException {
    private static final long serialVersionUID = 1L;

    /** The errno of an operating-system error, else 0. */
    private final int errno;
    /** Bytes that reached the destination before the error. */
    private final long bytesTransferred;

    /**
     * An error with an errno (0 when there is none) and the bytes moved before it.
     *
     * @param message what went wrong
     * @param errno the OS error number, or 0
     * @param bytesTransferred bytes that reached the destination before the error
     */
    public ZcopyException(String message, int errno, long bytesTransferred) {
        super(message);
        this.errno = errno;
        this.bytesTransferred = bytesTransferred;
    }

    /**
     * The errno of the failing system call ({@code EPIPE} is 32, {@code ECONNRESET} 104,
     * {@code EBADF} 9, ...), or 0 when the error did not come from the kernel.
     *
     * @return the errno, or 0
     */
    public int errno() {
        return errno;
    }

    /**
     * Bytes that reached the destination before the error (the engine never loses or
     * duplicates a byte, so this is where to resume).
     *
     * @return the byte count, 0 when nothing moved
     */
    public long bytesTransferred() {
        return bytesTransferred;
    }
}
