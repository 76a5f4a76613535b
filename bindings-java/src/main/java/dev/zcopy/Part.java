package dev.zcopy;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.util.Objects;

/**
 * One piece of a response for {@link ZeroCopy#sendParts}: bytes from memory (a header, a
 * boundary, a trailer) or a range of a file.
 *
 * <p>A bytes part takes the buffer's bytes between its position and limit when the part is
 * made; the buffer's position is never moved, and its contents must not change until the call
 * that sends it returns. A direct buffer is sent from its own memory; a heap buffer or array is
 * copied into the call (headers are small). A file part never uses or moves the channel's
 * position.
 */
public final class Part {
    /** A {@code byte[]} or a direct {@link ByteBuffer}; null for a file part. */
    final Object data;
    /** The file of a file part; null for a bytes part. */
    final FileChannel file;
    /** Position in {@link #data} or in {@link #file}. */
    final long position;
    /** Bytes in the part. */
    final long length;

    private Part(Object data, FileChannel file, long position, long length) {
        this.data = data;
        this.file = file;
        this.position = position;
        this.length = length;
    }

    /**
     * The bytes between the buffer's position and limit.
     *
     * @param buffer the bytes (not copied for a direct buffer)
     * @return the part
     */
    public static Part bytes(ByteBuffer buffer) {
        Objects.requireNonNull(buffer, "buffer");
        int pos = buffer.position();
        int len = buffer.remaining();
        if (buffer.isDirect()) {
            return new Part(buffer, null, pos, len);
        }
        if (buffer.hasArray()) {
            return new Part(buffer.array(), null, buffer.arrayOffset() + (long) pos, len);
        }
        // A read-only heap buffer has no accessible array: copy it.
        byte[] copy = new byte[len];
        buffer.duplicate().get(copy);
        return new Part(copy, null, 0, len);
    }

    /**
     * All of an array.
     *
     * @param bytes the bytes
     * @return the part
     */
    public static Part bytes(byte[] bytes) {
        Objects.requireNonNull(bytes, "bytes");
        return new Part(bytes, null, 0, bytes.length);
    }

    /**
     * {@code count} bytes of a file from {@code position}; the file must hold them all when
     * the response is sent (a shorter file is an {@link IllegalArgumentException} before any
     * byte of the response goes out).
     *
     * @param file a file channel (the JDK's implementation), open for reading
     * @param position where the range starts
     * @param count how many bytes
     * @return the part
     * @throws IllegalArgumentException if {@code position} or {@code count} is negative
     */
    public static Part file(FileChannel file, long position, long count) {
        Objects.requireNonNull(file, "file");
        if (position < 0 || count < 0) {
            throw new IllegalArgumentException("negative position or count");
        }
        return new Part(null, file, position, count);
    }

    /**
     * The part's length in bytes.
     *
     * @return its length
     */
    public long length() {
        return length;
    }
}
