// rtnt native runtime: include this one header to load and run RTNeural-format JSON models.
#pragma once

#include "rtnt/model/loader.hpp"
#include "rtnt/model/model.hpp"
