/* test_scalar.c — core/src/scalar.c: the one name grammar and the two bool
 * grammars (experiment files, plugin parameters), the integer and number
 * grammar of experiment and model files, and core/src/strbuf.c's
 * cell writers. */
#include <criterion/criterion.h>

#include "scalar.h"
#include "strbuf.h"

#include <math.h>
#include <string.h>

Test(scalar, names)
{
    cr_expect(pl__name_ok("conv1", 0, "", 63));
    cr_expect(pl__name_ok("a_b_9", 0, "", 0));
    cr_expect_not(pl__name_ok("", 0, "", 0), "empty");
    cr_expect_not(pl__name_ok("Conv1", 0, "", 0), "upper case without `upper`");
    cr_expect(pl__name_ok("Conv1", 1, "", 0));
    cr_expect_not(pl__name_ok("a.b", 0, "", 0));
    cr_expect(pl__name_ok("a.b", 0, ".", 0));
    cr_expect_not(pl__name_ok("a/b", 1, ".-", 0), "never a path");
    char long_name[80];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    cr_expect_not(pl__name_ok(long_name, 0, "", 63), "longer than max");
    long_name[63] = '\0';
    cr_expect(pl__name_ok(long_name, 0, "", 63), "exactly max");
}

Test(scalar, bools)
{
    int v = -1;
    cr_expect(pl__bool_word("True", PL__BOOL_YAML, &v) && v == 1);
    cr_expect(pl__bool_word("FALSE", PL__BOOL_YAML, &v) && v == 0);
    cr_expect_not(pl__bool_word("yes", PL__BOOL_YAML, &v), "experiment files take true/false only");
    cr_expect_not(pl__bool_word("1", PL__BOOL_YAML, &v));
    cr_expect(pl__bool_word("on", PL__BOOL_PARAM, &v) && v == 1);
    cr_expect(pl__bool_word("0", PL__BOOL_PARAM, &v) && v == 0);
    cr_expect_not(pl__bool_word("True", PL__BOOL_PARAM, &v), "plugin parameters are lower case");
    v = 7;
    cr_expect_not(pl__bool_word("maybe", PL__BOOL_PARAM, &v));
    cr_expect_eq(v, 7, "an unknown word leaves *out alone");
}

Test(scalar, integers_and_numbers)
{
    long long i = 0;
    cr_expect(pl__int_word("-42", &i) == 1 && i == -42);
    cr_expect(pl__int_word("+7", &i) == 1 && i == 7);
    cr_expect_eq(pl__int_word("99999999999999999999", &i), -1, "out of range");
    static const char *const not_int[] = {"", "-", "1.0", "0x10", " 5", "1e3", "1_000"};
    for (size_t k = 0; k < sizeof not_int / sizeof not_int[0]; k++)
        cr_expect_eq(pl__int_word(not_int[k], &i), 0, "'%s'", not_int[k]);
    double d = 0;
    cr_expect(pl__num_word("1e-3", &d) && d == 1e-3);
    cr_expect(pl__num_word(".5", &d) && d == 0.5);
    cr_expect(pl__num_word("-2.", &d) && d == -2);
    cr_expect(pl__num_word("-.Inf", &d) && isinf(d) && d < 0);
    cr_expect(pl__num_word("+.inf", &d) && isinf(d) && d > 0);
    cr_expect(pl__num_word(".NaN", &d) && isnan(d));
    static const char *const not_num[] = {"", ".", "-.nan", "nan", "inf", "0x1p3", "1_0", " 1", "1 ", "e5", ".e5",
                                          "1e", "infinity"};
    for (size_t k = 0; k < sizeof not_num / sizeof not_num[0]; k++)
        cr_expect_eq(pl__num_word(not_num[k], &d), 0, "'%s'", not_num[k]);
}

Test(strbuf, cells)
{
    pl__buf b = {0};
    const char *cells[] = {"plain", "a,b", "say \"hi\"", ""};
    pl__csv_strs(&b, cells, 4);
    cr_expect_str_eq(b.data, "plain,\"a,b\",\"say \"\"hi\"\"\",");
    b.len = 0;
    const double v[3] = {1.23456, NAN, -2};
    pl__csv_nums(&b, v, 3, 2);
    cr_expect_str_eq(b.data, "1.23,,-2.00");
    b.len = 0;
    const char *md[] = {"a|b", "", "x\ny"};
    pl__md_row(&b, md, 3);
    cr_expect_str_eq(b.data, "| a\\|b | \xe2\x80\x94 | x y |\n");
    cr_expect_not(b.failed);
    pl__buf_free(&b);
}
