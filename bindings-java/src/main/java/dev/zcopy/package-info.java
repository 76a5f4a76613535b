/**
 * zcopy for Java: zero-copy transfers between files, sockets and pipes.
 *
 * <p>Start with {@link dev.zcopy.ZeroCopy}: drop-ins for {@code FileChannel.transferTo} and
 * {@code transferFrom}, the engine's {@code transfer} on file descriptors, and a splice relay
 * between two sockets. {@link dev.zcopy.ZeroCopySender} streams direct buffers with
 * {@code MSG_ZEROCOPY}. Errors are {@link dev.zcopy.ZcopyException} (an {@code IOException}
 * with the errno) and its subclasses, or the NIO exceptions the drop-ins promise.
 */
package dev.zcopy;
