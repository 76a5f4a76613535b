package dev.zcopy;

/**
 * The deadline given by {@link TransferOptions.Builder#timeout(java.time.Duration)} (one
 * deadline for the whole call) passed before the transfer finished.
 * {@link #bytesTransferred()} says how far it got; with a seekable source and no offset the
 * source position ends exactly there, so the transfer can be resumed.
 */
public class ZcopyTimeoutException extends ZcopyException {
    private static final long serialVersionUID = 1L;

    /**
     * A timeout error.
     *
     * @param message what timed out
     * @param bytesTransferred bytes that reached the destination before the deadline
     */
    public ZcopyTimeoutException(String message, long bytesTransferred) {
        super(message, 0, bytesTransferred);
    }
}
