/**
 * The JNI bridge: {@link dev.zcopy.internal.Native} holds every native method and
 * {@link dev.zcopy.internal.NativeLoader} loads the library. Not an API: use {@link dev.zcopy}.
 */
package dev.zcopy.internal;
