// How a frontend calls the enrollment service with the generated types.
// `make contract` generates src/generated/api.ts from openapi.json and compiles this
// file with `tsc --strict`: a field the API stops sending, or a renamed path or
// parameter, breaks the build here before it breaks a frontend.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/api";

export type Student = components["schemas"]["Student"];
export type Course = components["schemas"]["Course"];
export type StudentCourse = components["schemas"]["StudentCourse"];
export type Problem = components["schemas"]["Problem"];

/** A problem+json answer, thrown so the caller can show `detail` or act on `status`. */
export class ProblemError extends Error {
  readonly problem: Problem;

  constructor(problem: Problem) {
    super(`${problem.status} ${problem.title}: ${problem.detail}`);
    this.problem = problem;
  }
}

export function enrollmentApi(baseUrl: string, token?: string) {
  const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  return createClient<paths>({ baseUrl, headers });
}

export type EnrollmentApi = ReturnType<typeof enrollmentApi>;

/** One line per student of the first page matching `query`: name, email and course count. */
export async function studentLines(api: EnrollmentApi, query: string): Promise<string[]> {
  const { data, error } = await api.GET("/students", {
    params: { query: { q: query, page: 1, page_size: 50 } },
  });
  if (error) throw new ProblemError(error);
  return data.map(
    (student) => `${student.name} <${student.email}>: ${student.courses.length} course(s)`,
  );
}

export async function createStudent(
  api: EnrollmentApi,
  name: string,
  email: string,
): Promise<Student> {
  const { data, error } = await api.POST("/students", { body: { name, email } });
  if (error) throw new ProblemError(error);
  return data;
}

export async function createCourse(
  api: EnrollmentApi,
  code: string,
  title: string,
  capacity: number | null,
): Promise<Course> {
  const { data, error } = await api.POST("/courses", { body: { code, title, capacity } });
  if (error) throw new ProblemError(error);
  return data;
}

/** Enroll, waitlisting for full courses; the answer is the student with both lists. */
export async function enroll(
  api: EnrollmentApi,
  student: Student,
  courses: Course[],
): Promise<Student> {
  const { data, error } = await api.POST("/students/{student_id}/courses", {
    params: { path: { student_id: student.id } },
    body: { course_ids: courses.map((course) => course.id), waitlist: true },
  });
  if (error) throw new ProblemError(error);
  return data;
}

export async function coursesOf(api: EnrollmentApi, studentId: number): Promise<StudentCourse[]> {
  const { data, error } = await api.GET("/students/{student_id}/courses", {
    params: { path: { student_id: studentId } },
  });
  if (error) throw new ProblemError(error);
  return data;
}

/** The seats a course has left as text; `seats_left` is null when the capacity is unlimited. */
export function seatsText(course: Course): string {
  return course.seats_left === null ? "unlimited" : `${course.seats_left} of ${course.capacity}`;
}

/** What a registration page shows after one click on "enroll". */
export async function registrationPage(api: EnrollmentApi): Promise<string[]> {
  const ada = await createStudent(api, "Ada Lovelace", "ada@example.edu");
  const course = await createCourse(api, "CS101", "Programming", 30);
  const enrolled = await enroll(api, ada, [course]);
  const lines = enrolled.courses.map(
    (summary) => `${summary.code} ${summary.title}, since ${summary.enrolled_at}`,
  );
  const waiting = enrolled.waitlist.map(
    (summary) => `${summary.code}: number ${summary.position} on the waitlist`,
  );
  const courses = await coursesOf(api, ada.id);
  const first = courses[0];
  if (first !== undefined) lines.push(`${first.code}: ${seatsText(first)} seats left`);
  try {
    await createStudent(api, "Ada again", "ADA@example.edu");
  } catch (caught) {
    // The email is taken (409): show the problem's own sentence next to the form.
    if (caught instanceof ProblemError && caught.problem.status === 409) {
      lines.push(caught.problem.detail);
    } else {
      throw caught;
    }
  }
  return [...lines, ...waiting, ...(await studentLines(api, "ada"))];
}
