package dev.zcopy;

/**
 * An explicit method cannot work for this descriptor pair or on this kernel (and fallback
 * was not allowed), or a descriptor is of a kind the engine cannot move bytes through (a
 * datagram socket, an epoll descriptor, ...). Nothing was consumed from a pipe or socket
 * source.
 */
public class ZcopyUnsupportedException extends ZcopyException {
    private static final long serialVersionUID = 1L;

    /**
     * An unsupported-operation error.
     *
     * @param message why the operation cannot work
     * @param bytesTransferred bytes that reached the destination before the error (usually 0)
     */
    public ZcopyUnsupportedException(String message, long bytesTransferred) {
        super(message, 0, bytesTransferred);
    }
}
