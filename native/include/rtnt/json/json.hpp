// A small, strict, bounded JSON reader for model files (RFC 8259 plus the NaN / Infinity /
// -Infinity literals that Python's json module writes, so the loader can reject them by name).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace rtnt {
namespace json {

enum class Type { Null, Bool, Number, String, Array, Object };

/// A parsed JSON value. Objects keep their members in file order.
struct Value {
    Type type = Type::Null;
    bool boolean = false;
    double number = 0.0;
    std::string string;
    std::vector<Value> items;                 // array elements or object member values
    std::vector<std::string> keys;            // object member names, parallel to items

    bool is_number() const noexcept { return type == Type::Number; }
    bool is_array() const noexcept { return type == Type::Array; }
    bool is_object() const noexcept { return type == Type::Object; }
    bool is_string() const noexcept { return type == Type::String; }

    /// The member named key of an object, or nullptr (also for non-objects). Keys are unique (the parser rejects duplicates).
    const Value* find(std::string_view key) const noexcept {
        if (type != Type::Object) return nullptr;
        for (std::size_t i = keys.size(); i-- > 0;)
            if (keys[i] == key) return &items[i];
        return nullptr;
    }
};

/// Thrown for text that is not JSON; what() names the line and column.
class ParseError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {

class Parser {
public:
    Parser(std::string_view text, int max_depth) : s_(text), max_depth_(max_depth) {}

    Value parse_document() {
        Value v = parse_value(0);
        skip_ws();
        if (i_ != s_.size()) fail("unexpected text after the JSON value");
        return v;
    }

private:
    std::string_view s_;
    std::size_t i_ = 0;
    int max_depth_;

    [[noreturn]] void fail(const std::string& what) const {
        std::size_t line = 1, col = 1;
        for (std::size_t k = 0; k < i_ && k < s_.size(); ++k) {
            if (s_[k] == '\n') {
                ++line;
                col = 1;
            } else {
                ++col;
            }
        }
        throw ParseError("JSON syntax error at line " + std::to_string(line) + ", column " + std::to_string(col) + ": " + what);
    }

    bool at_end() const noexcept { return i_ >= s_.size(); }
    char peek() const noexcept { return at_end() ? '\0' : s_[i_]; }

    void skip_ws() noexcept {
        while (!at_end() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
    }

    bool consume_literal(std::string_view lit) noexcept {
        if (s_.substr(i_, lit.size()) == lit) {
            i_ += lit.size();
            return true;
        }
        return false;
    }

    Value parse_value(int depth) {
        if (depth > max_depth_) fail("nesting deeper than " + std::to_string(max_depth_) + " levels");
        skip_ws();
        if (at_end()) fail("unexpected end of input (the file is truncated)");
        Value v;
        const char c = s_[i_];
        if (c == '{') {
            parse_object(v, depth);
        } else if (c == '[') {
            parse_array(v, depth);
        } else if (c == '"') {
            v.type = Type::String;
            v.string = parse_string();
        } else if (c == '-' || (c >= '0' && c <= '9') || c == 'N' || c == 'I') {
            v.type = Type::Number;
            v.number = parse_number();
        } else if (consume_literal("true")) {
            v.type = Type::Bool;
            v.boolean = true;
        } else if (consume_literal("false")) {
            v.type = Type::Bool;
        } else if (consume_literal("null")) {
            v.type = Type::Null;
        } else {
            fail(std::string("unexpected character '") + (c >= 32 && c < 127 ? std::string(1, c) : "\\x" + std::to_string(static_cast<unsigned char>(c))) + "'");
        }
        return v;
    }

    void parse_array(Value& v, int depth) {
        v.type = Type::Array;
        ++i_;  // [
        skip_ws();
        if (peek() == ']') {
            ++i_;
            return;
        }
        for (;;) {
            v.items.push_back(parse_value(depth + 1));
            skip_ws();
            if (at_end()) fail("unexpected end of input inside an array (the file is truncated)");
            if (s_[i_] == ',') {
                ++i_;
            } else if (s_[i_] == ']') {
                ++i_;
                return;
            } else {
                fail("expected ',' or ']' in an array");
            }
        }
    }

    void parse_object(Value& v, int depth) {
        v.type = Type::Object;
        ++i_;  // {
        skip_ws();
        if (peek() == '}') {
            ++i_;
            return;
        }
        std::unordered_set<std::string> seen;
        for (;;) {
            skip_ws();
            if (at_end()) fail("unexpected end of input inside an object (the file is truncated)");
            if (s_[i_] != '"') fail("expected a quoted member name");
            const std::size_t key_at = i_;
            v.keys.push_back(parse_string());
            if (!seen.insert(v.keys.back()).second) {
                i_ = key_at;
                fail("duplicate member name \"" + v.keys.back() + "\" in one object; remove one of them");
            }
            skip_ws();
            if (peek() != ':') fail("expected ':' after a member name");
            ++i_;
            v.items.push_back(parse_value(depth + 1));
            skip_ws();
            if (at_end()) fail("unexpected end of input inside an object (the file is truncated)");
            if (s_[i_] == ',') {
                ++i_;
            } else if (s_[i_] == '}') {
                ++i_;
                return;
            } else {
                fail("expected ',' or '}' in an object");
            }
        }
    }

    static void append_utf8(std::string& out, std::uint32_t cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    std::uint32_t parse_hex4() {
        if (s_.size() - i_ < 4) fail("truncated \\u escape");
        std::uint32_t cp = 0;
        for (int k = 0; k < 4; ++k) {
            const char h = s_[i_++];
            cp <<= 4;
            if (h >= '0' && h <= '9') cp |= static_cast<std::uint32_t>(h - '0');
            else if (h >= 'a' && h <= 'f') cp |= static_cast<std::uint32_t>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F') cp |= static_cast<std::uint32_t>(h - 'A' + 10);
            else fail("invalid hex digit in a \\u escape");
        }
        return cp;
    }

    std::string parse_string() {
        ++i_;  // opening quote
        std::string out;
        for (;;) {
            if (at_end()) fail("unterminated string (the file is truncated)");
            const char c = s_[i_++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) fail("control character inside a string");
            if (static_cast<unsigned char>(c) >= 0x80) {
                --i_;
                take_utf8(out);
                continue;
            }
            if (c != '\\') {
                out += c;
                continue;
            }
            if (at_end()) fail("unterminated escape (the file is truncated)");
            const char e = s_[i_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    std::uint32_t cp = parse_hex4();
                    if (cp >= 0xDC00 && cp < 0xE000) fail("lone UTF-16 low surrogate in a \\u escape");
                    if (cp >= 0xD800 && cp < 0xDC00) {
                        if (s_.substr(i_, 2) != "\\u") fail("lone UTF-16 high surrogate in a \\u escape");
                        i_ += 2;
                        const std::uint32_t lo = parse_hex4();
                        if (lo < 0xDC00 || lo >= 0xE000) fail("invalid UTF-16 surrogate pair");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    append_utf8(out, cp);
                    break;
                }
                default: fail("invalid escape in a string");
            }
        }
    }

    /// Copies one well-formed UTF-8 sequence (RFC 3629: no overlong forms, no surrogates, at most
    /// U+10FFFF) from the text into out.
    void take_utf8(std::string& out) {
        const auto lead = static_cast<unsigned char>(s_[i_]);
        int extra;
        std::uint32_t cp, min;
        if ((lead & 0xE0) == 0xC0) extra = 1, cp = lead & 0x1F, min = 0x80;
        else if ((lead & 0xF0) == 0xE0) extra = 2, cp = lead & 0x0F, min = 0x800;
        else if ((lead & 0xF8) == 0xF0) extra = 3, cp = lead & 0x07, min = 0x10000;
        else fail("invalid UTF-8 byte in a string; save the file as UTF-8");
        if (i_ + extra >= s_.size()) fail("truncated UTF-8 sequence in a string; save the file as UTF-8");
        for (int k = 1; k <= extra; ++k) {
            const auto b = static_cast<unsigned char>(s_[i_ + k]);
            if ((b & 0xC0) != 0x80) fail("invalid UTF-8 sequence in a string; save the file as UTF-8");
            cp = (cp << 6) | (b & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
            fail("invalid UTF-8 sequence in a string; save the file as UTF-8");
        out.append(s_.substr(i_, extra + 1));
        i_ += extra + 1;
    }

    static double pow10(int e) noexcept {
        static constexpr double exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                           1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
        if (e >= 0 && e <= 22) return exact[e];
        return std::pow(10.0, static_cast<double>(e));
    }

    double parse_number() {
        bool negative = false;
        if (s_[i_] == '-') {
            negative = true;
            ++i_;
        }
        if (consume_literal("Infinity")) return negative ? -HUGE_VAL : HUGE_VAL;
        if (!negative && consume_literal("NaN")) return std::nan("");
        if (at_end() || s_[i_] < '0' || s_[i_] > '9') fail("invalid number");
        std::uint64_t mantissa = 0;
        int digits = 0;       // significant digits kept in mantissa
        long exponent = 0;    // decimal exponent applied to mantissa
        auto take_digit = [&](char d, bool fractional) {
            if (digits < 19) {
                if (mantissa != 0 || d != '0') ++digits;
                mantissa = mantissa * 10 + static_cast<std::uint64_t>(d - '0');
                if (fractional) --exponent;
            } else if (!fractional) {
                ++exponent;  // integer digit beyond the kept precision
            }
        };
        if (s_[i_] == '0') {
            ++i_;
            if (!at_end() && s_[i_] >= '0' && s_[i_] <= '9') fail("leading zeros are not allowed in a number");
        } else {
            while (!at_end() && s_[i_] >= '0' && s_[i_] <= '9') take_digit(s_[i_++], false);
        }
        if (!at_end() && s_[i_] == '.') {
            ++i_;
            if (at_end() || s_[i_] < '0' || s_[i_] > '9') fail("a digit must follow the decimal point");
            while (!at_end() && s_[i_] >= '0' && s_[i_] <= '9') take_digit(s_[i_++], true);
        }
        if (!at_end() && (s_[i_] == 'e' || s_[i_] == 'E')) {
            ++i_;
            bool eneg = false;
            if (!at_end() && (s_[i_] == '+' || s_[i_] == '-')) eneg = s_[i_++] == '-';
            if (at_end() || s_[i_] < '0' || s_[i_] > '9') fail("a digit must follow the exponent marker");
            long e = 0;
            while (!at_end() && s_[i_] >= '0' && s_[i_] <= '9') {
                if (e < 100000) e = e * 10 + (s_[i_] - '0');
                ++i_;
            }
            exponent += eneg ? -e : e;
        }
        double value = static_cast<double>(mantissa);
        if (mantissa != 0) {
            if (exponent < -300) {
                value = value * pow10(static_cast<int>(std::max(exponent + 300, -400L))) * 1e-300;
            } else if (exponent > 400) {
                value = HUGE_VAL;
            } else if (exponent < 0 && exponent >= -22) {
                value /= pow10(static_cast<int>(-exponent));
            } else {
                value *= pow10(static_cast<int>(exponent));
            }
        }
        return negative ? -value : value;
    }
};

}  // namespace detail

/// Parses a whole document. Throws ParseError on malformed text or nesting deeper than max_depth.
inline Value parse(std::string_view text, int max_depth = 64) { return detail::Parser(text, max_depth).parse_document(); }

inline const char* type_name(Type t) noexcept {
    switch (t) {
        case Type::Null: return "null";
        case Type::Bool: return "a boolean";
        case Type::Number: return "a number";
        case Type::String: return "a string";
        case Type::Array: return "an array";
        case Type::Object: return "an object";
    }
    return "?";
}

}  // namespace json
}  // namespace rtnt
