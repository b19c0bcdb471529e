// rtnt native runtime: include this one header to load and run RTNeural-format JSON and NAM .nam models.
#pragma once

#include "rtnt/model/loader.hpp"
#include "rtnt/model/model.hpp"
