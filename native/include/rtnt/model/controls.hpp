// The top-level 'controls' list of a knob-conditioned model file (RTNeural JSON, rtnt's JSON
// extensions and a conditioned .nam): K knobs, input channels 1..K after the audio in channel 0.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "../json/json.hpp"
#include "error.hpp"
#include "model.hpp"

namespace rtnt {
namespace detail {

using json::Value;

/// One member of a control entry, a number finite in float32, or a ModelError naming the entry.
inline double control_number(const Value& entry, const char* key, const std::string& where) {
    const Value* m = entry.find(key);
    if (!m) throw ModelError(where + ": missing key '" + key + "'; a control has name, minimum, maximum and default");
    if (!m->is_number() || !std::isfinite(static_cast<float>(m->number)))
        throw ModelError(where + ": '" + key + "' must be a finite number, got " +
                         (m->is_number() ? number_str(m->number) : std::string(json::type_name(m->type))));
    return m->number;
}

/// The top-level 'controls' list of a conditioned model (absent or [] for K = 0), checked entry by
/// entry and against the input size, which must be 1 + K when K > 0 (`size_field` names it in errors).
inline std::vector<ControlSpec> read_controls(const Value& doc, int in_size, const char* size_field = "'in_shape' ends in") {
    const Value* list = doc.find("controls");
    if (!list) return {};
    if (!list->is_array())
        throw ModelError(std::string("'controls' must be an array of {name, minimum, maximum, default} objects, got ") +
                         json::type_name(list->type));
    std::vector<ControlSpec> controls;
    for (std::size_t i = 0; i < list->items.size(); ++i) {
        const Value& e = list->items[i];
        const std::string where = "controls[" + std::to_string(i) + "]";
        if (!e.is_object())
            throw ModelError(where + " must be an object {name, minimum, maximum, default}, got " + json::type_name(e.type));
        for (const std::string& key : e.keys)
            if (key != "name" && key != "minimum" && key != "maximum" && key != "default")
                throw ModelError(where + ": unknown key '" + key + "'; a control has name, minimum, maximum and default");
        const Value* name = e.find("name");
        if (!name || !name->is_string() || name->string.empty())
            throw ModelError(where + ": 'name' must be a non-empty string");
        ControlSpec c;
        c.name = name->string;
        c.minimum = control_number(e, "minimum", where);
        c.maximum = control_number(e, "maximum", where);
        c.default_value = control_number(e, "default", where);
        if (!(c.minimum < c.maximum))
            throw ModelError(where + " ('" + c.name + "'): minimum " + number_str(c.minimum) + " must be below maximum " +
                             number_str(c.maximum));
        if (!(c.minimum <= c.default_value && c.default_value <= c.maximum))
            throw ModelError(where + " ('" + c.name + "'): default " + number_str(c.default_value) + " is outside [" +
                             number_str(c.minimum) + ", " + number_str(c.maximum) + "]");
        for (const ControlSpec& other : controls)
            if (other.name == c.name) throw ModelError(where + ": the name '" + c.name + "' repeats; every control needs its own name");
        controls.push_back(std::move(c));
    }
    if (!controls.empty() && in_size != 1 + static_cast<int>(controls.size()))
        throw ModelError(std::string(size_field) + " " + std::to_string(in_size) + " but 'controls' lists " +
                         std::to_string(controls.size()) + " control(s); a conditioned model's input is 1 audio channel + 1 per control (" +
                         std::to_string(1 + controls.size()) + ")");
    return controls;
}

}  // namespace detail
}  // namespace rtnt
