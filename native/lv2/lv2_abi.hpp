// The parts of the LV2 C ABI this plugin uses, declared from the LV2 specification
// (core, urid, options, buf-size, log, atom type URIs). Plain C layouts, so a host built against the
// official headers and this plugin agree on every struct and function signature.
#pragma once

#include <cstdarg>
#include <cstdint>

extern "C" {

/// Opaque plugin instance pointer handed back to every descriptor function.
typedef void* LV2_Handle;

/// A host feature: its URI and feature-specific data (may be null).
typedef struct {
    const char* URI;
    void* data;
} LV2_Feature;

/// The plugin descriptor returned by lv2_descriptor(): the plugin's URI and its entry points.
typedef struct LV2_Descriptor {
    const char* URI;
    LV2_Handle (*instantiate)(const struct LV2_Descriptor* descriptor, double sample_rate, const char* bundle_path,
                              const LV2_Feature* const* features);
    void (*connect_port)(LV2_Handle instance, uint32_t port, void* data_location);
    void (*activate)(LV2_Handle instance);
    void (*run)(LV2_Handle instance, uint32_t sample_count);
    void (*deactivate)(LV2_Handle instance);
    void (*cleanup)(LV2_Handle instance);
    const void* (*extension_data)(const char* uri);
} LV2_Descriptor;

/// urid: integer ids for URIs, mapped by the host.
typedef uint32_t LV2_URID;
typedef struct {
    void* handle;
    LV2_URID (*map)(void* handle, const char* uri);
} LV2_URID_Map;

/// options: an array of these, terminated by an entry whose key is 0 and value is null.
typedef enum {
    LV2_OPTIONS_INSTANCE = 0,
    LV2_OPTIONS_RESOURCE = 1,
    LV2_OPTIONS_BLANK = 2,
    LV2_OPTIONS_PORT = 3
} LV2_Options_Context;

typedef struct {
    LV2_Options_Context context;
    uint32_t subject;
    LV2_URID key;
    uint32_t size;
    LV2_URID type;
    const void* value;
} LV2_Options_Option;

/// log: printf-style messages to the host, tagged with a URID of the message class.
typedef struct {
    void* handle;
    int (*printf)(void* handle, LV2_URID type, const char* fmt, ...);
    int (*vprintf)(void* handle, LV2_URID type, const char* fmt, va_list ap);
} LV2_Log_Log;

}  // extern "C"

namespace lv2uri {
constexpr const char* kUridMap = "http://lv2plug.in/ns/ext/urid#map";
constexpr const char* kOptions = "http://lv2plug.in/ns/ext/options#options";
constexpr const char* kMaxBlockLength = "http://lv2plug.in/ns/ext/buf-size#maxBlockLength";
constexpr const char* kNominalBlockLength = "http://lv2plug.in/ns/ext/buf-size#nominalBlockLength";
constexpr const char* kAtomInt = "http://lv2plug.in/ns/ext/atom#Int";
constexpr const char* kAtomLong = "http://lv2plug.in/ns/ext/atom#Long";
constexpr const char* kLog = "http://lv2plug.in/ns/ext/log#log";
constexpr const char* kLogError = "http://lv2plug.in/ns/ext/log#Error";
constexpr const char* kLogWarning = "http://lv2plug.in/ns/ext/log#Warning";
}  // namespace lv2uri

#if defined(_WIN32)
#define RTNT_LV2_EXPORT extern "C" __declspec(dllexport)
#else
#define RTNT_LV2_EXPORT extern "C" __attribute__((visibility("default")))
#endif
