package dev.zcopy;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import org.junit.jupiter.api.Test;

/** The JNI bridge is private to the library, and its handles cannot crash the JVM. */
class BridgeTest {
    @Test
    void theBridgeIsNotPartOfTheApi() throws Exception {
        Class<?> bridge = Class.forName("dev.zcopy.Native");
        assertFalse(Modifier.isPublic(bridge.getModifiers()), "dev.zcopy.Native is public");
        for (Method m : bridge.getDeclaredMethods()) {
            assertFalse(Modifier.isPublic(m.getModifiers()), m + " is public");
        }
        assertThrows(ClassNotFoundException.class, () -> Class.forName("dev.zcopy.internal.Native"));
        assertFalse(Modifier.isPublic(Class.forName("dev.zcopy.NativeLoader").getModifiers()));
    }

    @Test
    void forgedStaleAndClosedHandlesAreExceptionsNotCrashes() throws Exception {
        Native.ensureLoaded();
        for (long forged : new long[] {0L, 1L, -1L, 0x7f00_dead_beefL, Long.MAX_VALUE}) {
            assertThrows(IllegalArgumentException.class, () -> Native.senderPoll(forged, 0));
            assertThrows(IllegalArgumentException.class, () -> Native.senderStats(forged, new long[5]));
            assertThrows(IllegalArgumentException.class,
                () -> Native.senderSend(forged, java.nio.ByteBuffer.allocateDirect(8), 0, 8));
            // Closing what is not open is a no-op.
            assertDoesNotThrow(() -> Native.senderClose(forged, 0));
        }
    }
}
